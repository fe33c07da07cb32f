"""``SAMRunInfoHook``: what a SAM-family wrapper cannot see by itself.

* At ``before_train`` it publishes the iterations per epoch (the length of
  the train dataloader) in the message hub, so that ``warmup_epochs``
  means whole passes over the data under an ``IterBasedTrainLoop`` too
  (mmengine publishes ``max_iters`` itself; ``arsam_mm/optim/run_info.py``).
* With ``log_lines``, at ``before_train`` it lowers the ``LoggerHook``
  interval so that a short run logs at least that many lines (an upstream
  interval of 50 or 100 leaves a few-hundred-iteration run silent).
* At ``after_train`` it logs one summary line: the last validation
  metrics, the share of two-pass iterations and the cost in SAM's passes.

``tools/train.py`` adds it to every run; with an upstream training script
add it to the config::

    custom_hooks = [dict(type='SAMRunInfoHook')]
"""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from arsam.sam_math import passes_vs_sam

from ..optim.run_info import EPOCH_LENGTH_KEY

__all__ = ['SAMRunInfoHook', 'run_summary']


def run_summary(runner) -> dict:
    """Last validation metrics and SAM statistics of ``runner``."""
    summary = {
        key[len('val/'):]: buffer.current()
        for key, buffer in runner.message_hub.log_scalars.items()
        if key.startswith('val/') and key not in ('val/time', 'val/data_time')
    }
    wrapper = runner.optim_wrapper
    if getattr(wrapper, 'total_iters', 0):
        rate = wrapper.sam_iters / wrapper.total_iters
        summary.update(sam_rate=rate, sam_iters=wrapper.sam_iters,
                       iters=wrapper.total_iters,
                       passes_vs_sam=passes_vs_sam(
                           rate, getattr(wrapper, 'second_pass_share', 1.0)))
    return summary


@HOOKS.register_module()
class SAMRunInfoHook(Hook):
    """Publish the epoch length; log the end-of-run summary.

    Args:
        log_lines (int, optional): log at least this many training lines
            per run (the logger's interval is lowered, never raised).
    """

    priority = 'VERY_HIGH'

    def __init__(self, log_lines: Optional[int] = None):
        self.log_lines = log_lines

    def before_train(self, runner) -> None:
        if self.log_lines:
            self._log_often_enough(runner)
        try:
            length = len(runner.train_dataloader)
        except TypeError:  # a dataloader without a length
            return
        runner.message_hub.update_info(EPOCH_LENGTH_KEY, length)

    def _log_often_enough(self, runner) -> None:
        from mmengine.hooks import LoggerHook
        wanted = max(1, runner.max_iters // self.log_lines)
        for hook in runner.hooks:
            if isinstance(hook, LoggerHook) and hook.interval > wanted:
                print_log(
                    f'Logging every {wanted} iterations instead of '
                    f'{hook.interval}: at least {self.log_lines} lines for '
                    f'this {runner.max_iters}-iteration run (set '
                    'default_hooks.logger.interval to choose).',
                    logger='current')
                hook.interval = wanted

    def after_train(self, runner) -> None:
        summary = run_summary(runner)
        text = ', '.join(f'{k}={v:.4g}' if isinstance(v, float) else
                         f'{k}={v}' for k, v in summary.items())
        print_log(f'arsam_mm summary: {text}', logger='current')
        runner.message_hub.update_info('arsam_mm/summary', summary)
