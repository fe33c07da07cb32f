"""``SAMTraceHook``: per-iteration record of what a SAM-family run did.

Counts forward and backward passes by instrumentation (a forward pre-hook
on the model and a gradient hook on one parameter, in training mode only),
and records the scalars the wrappers log (``train/sam_rate``,
``train/psf_norm``, ``train/psf_ratio``, ...) with the loss and the wall
time, into ``<work_dir>/sam_trace.json`` at the end of the run.
``tools/benchmark.py`` reads it; users can add it to any config::

    custom_hooks = [dict(type='SAMTraceHook')]
"""
import json
import os.path as osp
import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..optim.engine_glue import unwrap

__all__ = ['SAMTraceHook']

_KEYS = ('loss', 'sam_rate', 'psf_norm', 'psf_ratio', 'sharpness',
         'arsam_rate', 'psf_coef', 'arsam_dr', 'arsam_dv')


@HOOKS.register_module()
class SAMTraceHook(Hook):
    """Record passes, SAM statistics and timing per training iteration.

    Args:
        out_file (str): file name under the work dir.
    """

    priority = 'LOW'

    def __init__(self, out_file: str = 'sam_trace.json'):
        self.out_file = out_file
        self.forwards = 0
        self.backwards = 0
        self.records = []
        self._handles = []

    def before_train(self, runner) -> None:
        inner = unwrap(runner.model)

        def count_forward(module, args):
            if module.training:
                self.forwards += 1

        def count_backward(grad):
            self.backwards += 1

        param = next(p for p in inner.parameters() if p.requires_grad)
        self._handles = [
            inner.register_forward_pre_hook(count_forward),
            param.register_hook(count_backward),
        ]
        self._start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        hub = runner.message_hub
        record = dict(iter=runner.iter + 1,
                      time=time.perf_counter() - self._start,
                      forwards=self.forwards, backwards=self.backwards)
        for key in _KEYS:
            buffer = hub.log_scalars.get(f'train/{key}')
            if buffer is not None:
                record[key] = float(buffer.current())
        self.records.append(record)

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        with open(osp.join(runner.work_dir, self.out_file), 'w') as f:
            json.dump(dict(train_time=time.perf_counter() - self._start,
                           forwards=self.forwards, backwards=self.backwards,
                           records=self.records), f)
