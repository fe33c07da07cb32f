"""What the SAM-family wrappers log (``train/*`` scalars of the message
hub, which mmengine's LogProcessor averages into the text log and sends to
the visualizer backends, TensorBoard included).

* ``sam_rate``: the share of iterations so far that took two passes (the
  cost actually paid); ``(1 + sam_rate) / 2`` is the cost in SAM's passes.
* ``rho``: the radius of the first param group (schedulers may move it).
* ``sharpness``: the loss at ``w + e`` minus the loss at ``w``, on
  two-pass iterations.
* The policy's scalars, e.g. ARSAM's ``arsam_rate`` (the target share of
  the current window, not the share so far), ``psf_norm``, ``psf_ratio``
  (``||PSF|| / ||g||``, typically 0.1 to 0.3 and rising slowly over
  training; far above 1 means rho is large for this model), ``psf_coef``.

Device values are read back on two-pass iterations only; one-pass
iterations log the last value again, without a host sync.
"""
import logging
from typing import Dict, Optional

import torch
from mmengine.logging import print_log
from torch import Tensor

from arsam import _log
from arsam.sam_math import passes_vs_sam

__all__ = ['SAMScalars', 'forward_engine_log']

_MEANINGS = dict(
    sam_rate='share of the iterations so far with two passes (the cost '
    "paid; (1 + sam_rate) / 2 of SAM's passes)",
    arsam_rate="ARSAM's target share for the current window",
    psf_ratio='||PSF||/||g|| at the last SAM iteration (typically 0.1-0.3, '
    'rising slowly; far above 1: rho is large for this model)',
    psf_coef='weight of the reused term this iteration',
    sharpness='loss at w + e minus loss at w')


class _ToMMLogger(logging.Handler):
    """Hands the engine's records to mmengine's current logger."""

    def emit(self, record: logging.LogRecord) -> None:
        print_log(record.getMessage(), logger='current', level=record.levelno)


def forward_engine_log() -> None:
    """The ``'arsam'`` logger (engine, policies) writes through mmengine's
    current logger: the Runner's console and log file."""
    if not any(isinstance(h, _ToMMLogger) for h in _log.logger.handlers):
        _log.logger.addHandler(_ToMMLogger())
        _log.logger.setLevel(logging.INFO)
        _log.logger.propagate = False


class SAMScalars:
    """The scalars of the last two-pass iteration, kept for the others.

    Args:
        name (str): the wrapper's type name, for the log lines.
    """

    def __init__(self, name: str):
        self.name = name
        self.cache: Dict[str, float] = {}
        self.explained = False

    def log(self, hub, policy, sam_rate: float, rho: float, two_pass: bool,
            sharpness: Optional[Tensor]) -> None:
        hub.update_scalar('train/sam_rate', sam_rate)
        hub.update_scalar('train/rho', rho)
        scalars = policy.log_scalars()
        if two_pass:
            if sharpness is not None:
                scalars['sharpness'] = sharpness
            tensors = {
                k: v for k, v in scalars.items() if isinstance(v, Tensor)
            }
            if tensors:
                values = torch.stack([t.float() for t in tensors.values()])
                self.cache.update(zip(tensors, values.tolist()))
            if not self.explained:  # the first two-pass step has them all
                self.explained = True
                print_log(self.explain(scalars), logger='current')
        for key, value in scalars.items():
            if not isinstance(value, Tensor):
                hub.update_scalar(f'train/{key}', float(value))
        for key, value in self.cache.items():
            hub.update_scalar(f'train/{key}', value)

    def explain(self, scalars: dict) -> str:
        """What the logged scalars mean, in one line."""
        keys = ['sam_rate', *scalars]
        meanings = [f'{k}: {_MEANINGS[k]}' for k in dict.fromkeys(keys)
                    if k in _MEANINGS]
        return f'{self.name} logs train/* scalars; ' + '; '.join(
            meanings) + '.'

    def run_end_line(self, sam_iters: int, total_iters: int,
                     second_pass_share: float = 1.0) -> str:
        rate = sam_iters / total_iters
        on = ('' if second_pass_share >= 1 else
              f', the second on {second_pass_share:g} of the batch')
        return (f'{self.name}: {sam_iters} of {total_iters} training '
                f'iterations took two passes{on} (sam_rate={rate:.3f}, '
                f'{passes_vs_sam(rate, second_pass_share):.2f}x SAM\'s '
                'forward/backward passes).')
