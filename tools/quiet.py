"""What the project's tools keep off the console, and why: the one list.

Third-party warnings that say nothing about the run and that no user of
arsam_mm can act on. ``tools/train.py`` and ``tools/benchmark.py`` apply
:func:`quiet_third_party` before they import OpenMMLab; importing ``arsam``
or ``arsam_mm`` filters nothing (a user's own script sees every warning),
and the log files keep everything: ``tools/train.py``'s run log in the work
dir, each benchmark run's ``run.log``.
"""
import logging
import re
import warnings

__all__ = ['WARNINGS', 'LOG_LINES', 'quiet_third_party', 'console_filter']

#: Python warnings: (message regex, category, why it is noise here).
WARNINGS = (
    (r'pkg_resources is deprecated as an API', UserWarning,
     'mmengine and mmcv import pkg_resources at start-up (setuptools<81 is '
     'pinned for them, docs/install.md)'),
    (r'``build_loss`` would be deprecated soon', UserWarning,
     "mmseg's own model builder calls its deprecated helper"),
    (r'Default ``avg_non_ignore`` is False', UserWarning,
     "mmseg's CrossEntropyLoss announces a default of upstream configs"),
    (r'The draw is False', UserWarning,
     "mmseg's visualization hook says drawing is off, as configured"),
    (r'The given NumPy array is not writable', UserWarning,
     "mmpretrain's MNIST reader hands torch a read-only buffer"),
)

#: mmengine logger lines (WARNING): (message regex, why).
LOG_LINES = (
    (r'"FileClient" will be deprecated', "mmengine's own hooks still use it"),
    (r'"HardDiskBackend" is the alias of "LocalBackend"',
     "mmengine's own hooks still use it"),
    (r'The prefix is not set in metric class',
     "mmseg's and mmpose's metrics leave their prefix to the evaluator"),
)


class _LogLineFilter(logging.Filter):

    def __init__(self):
        super().__init__()
        self.patterns = [re.compile(p) for p, _ in LOG_LINES]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(p.search(message) for p in self.patterns)


def console_filter() -> logging.Filter:
    """A filter for a console handler of an mmengine logger (the file
    handlers keep every line)."""
    return _LogLineFilter()


def quiet_third_party() -> None:
    """Install the warning filters of :data:`WARNINGS` (call it before
    OpenMMLab is imported: most of them fire at import)."""
    for message, category, _ in WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category)


def quiet_console_of(logger: logging.Logger) -> None:
    """Drop :data:`LOG_LINES` from ``logger``'s console handlers."""
    for handler in logger.handlers:
        if type(handler) is logging.StreamHandler:
            handler.addFilter(console_filter())
