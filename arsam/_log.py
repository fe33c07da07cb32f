"""Where the engine and the policies say what they do.

Everything goes to the standard ``logging`` logger ``'arsam'``, so a plain
PyTorch user sees it with ``logging.basicConfig(level=logging.INFO)``; the
mmengine glue forwards that logger to mmengine's current logger
(``arsam_mm/optim/sam_logging.py``), so a Runner's log file has it too.
"""
import logging

__all__ = ['logger', 'info', 'warning']

logger = logging.getLogger('arsam')


def info(message: str) -> None:
    logger.info(message)


def warning(message: str) -> None:
    logger.warning(message)
