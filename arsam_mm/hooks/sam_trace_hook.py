"""``SAMTraceHook``: per-iteration record of what a SAM-family run did.

Counts forward and backward passes by instrumentation (a forward pre-hook
on the model and a gradient hook on one parameter, in training mode only),
and ``passes``: forward plus backward passes weighted by the examples they
ran on (a second pass on half the batch, ``second_pass_share=0.5``, counts
one half each way; the iteration's first forward is the whole batch),
and records the scalars the wrappers log (``train/sam_rate``,
``train/psf_norm``, ``train/psf_ratio``, ...) with the loss and the wall
time, into ``<work_dir>/sam_trace.json`` at the end of the run.
``tools/benchmark.py`` reads it; users can add it to any config::

    custom_hooks = [dict(type='SAMTraceHook')]

With ``progress_file`` it also keeps ``<work_dir>/<progress_file>`` up to
date (the iteration, the run's length, the seconds so far and the last
validation metrics, written after the first iteration and then at most
every ``progress_every`` seconds):
``tools/benchmark.py`` shows each run's progress from it.
"""
import json
import os
import os.path as osp
import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..optim.batch_share import batch_size
from ..optim.engine_glue import unwrap

__all__ = ['SAMTraceHook']

_KEYS = ('loss', 'sam_rate', 'psf_norm', 'psf_ratio', 'sharpness',
         'arsam_rate', 'psf_coef', 'arsam_dr', 'arsam_dv')


@HOOKS.register_module()
class SAMTraceHook(Hook):
    """Record passes, SAM statistics and timing per training iteration.

    Args:
        out_file (str): file name under the work dir.
        progress_file (str, optional): a progress file under the work dir.
        progress_every (float): seconds between two writes of it.
    """

    priority = 'LOW'

    def __init__(self, out_file: str = 'sam_trace.json',
                 progress_file: str = None, progress_every: float = 2.0):
        self.out_file = out_file
        self.progress_file = progress_file
        self.progress_every = progress_every
        self._written = 0.0
        self._metrics = {}
        self.forwards = 0
        self.backwards = 0
        self.passes = 0.0
        self._batch = None  # the iteration's first forward's batch size
        self._weight = 1.0  # the last forward's examples / that size
        self.records = []
        self._handles = []

    def before_train(self, runner) -> None:
        inner = unwrap(runner.model)

        def count_forward(module, args, kwargs):
            if module.training:
                self.forwards += 1
                size = batch_size(kwargs.get('inputs',
                                             args[0] if args else None))
                if self._batch is None:
                    self._batch = size
                self._weight = (size / self._batch if size and self._batch
                                else 1.0)
                self.passes += self._weight

        def count_backward(grad):
            self.backwards += 1
            self.passes += self._weight

        param = next(p for p in inner.parameters() if p.requires_grad)
        self._handles = [
            inner.register_forward_pre_hook(count_forward, with_kwargs=True),
            param.register_hook(count_backward),
        ]
        self._start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        hub = runner.message_hub
        self._batch = None
        record = dict(iter=runner.iter + 1,
                      time=time.perf_counter() - self._start,
                      forwards=self.forwards, backwards=self.backwards,
                      passes=self.passes)
        for key in _KEYS:
            buffer = hub.log_scalars.get(f'train/{key}')
            if buffer is not None:
                record[key] = float(buffer.current())
        self.records.append(record)
        if (len(self.records) == 1
                or record['time'] - self._written >= self.progress_every):
            # the first iteration at once: a watcher sees the run move
            self._write_progress(runner, record['time'], record['iter'])

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._metrics = {}
        for key, value in (metrics or {}).items():
            try:
                self._metrics[key] = float(value)
            except (TypeError, ValueError):  # a per-class table, say
                pass
        if hasattr(self, '_start'):  # validation inside training
            self._write_progress(runner, time.perf_counter() - self._start,
                                 runner.iter)

    def _write_progress(self, runner, elapsed: float, done: int) -> None:
        if self.progress_file is None:
            return
        self._written = elapsed
        path = osp.join(runner.work_dir, self.progress_file)
        with open(path + '.tmp', 'w') as f:
            json.dump(dict(iter=done, max_iters=runner.max_iters,
                           time=elapsed, metrics=self._metrics), f)
        os.replace(path + '.tmp', path)  # never read half-written

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        with open(osp.join(runner.work_dir, self.out_file), 'w') as f:
            json.dump(dict(train_time=time.perf_counter() - self._start,
                           forwards=self.forwards, backwards=self.backwards,
                           passes=self.passes, records=self.records), f)
