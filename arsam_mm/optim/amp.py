"""Mixed precision for the SAM-family wrappers.

* :class:`AmpOnAnyDevice`: mmengine's ``AmpOptimWrapper``, which refuses to
  build without an accelerator, made to run on CPU too (bfloat16 autocast
  and ``torch.amp.GradScaler('cpu')``); on GPUs it is mmengine's class.
* :class:`AmpSharpnessAwareMixin`: what the two-pass step does differently
  under AMP: the perturbed pass runs under autocast, gradients carry the
  loss scale, and a non-finite pass is skipped by the scaler instead of
  stopping the run.
"""
from typing import Optional

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from torch import Tensor

from arsam._amp import grad_scale_of

from ._checks import ConfigError
from .sam_optim_wrapper import SharpnessAwareMixin

__all__ = ['AmpOnAnyDevice', 'AmpSharpnessAwareMixin']


class AmpOnAnyDevice(AmpOptimWrapper):
    """``AmpOptimWrapper`` that also runs on CPU (bfloat16 autocast).

    On a CPU-only machine this builds the scaler itself; the parsing of
    ``loss_scale`` repeats mmengine's (``AmpOptimWrapper.__init__``), whose
    branches ``tests/test_private_apis.py`` pins.
    """

    def __init__(self,
                 loss_scale='dynamic',
                 dtype=None,
                 use_fsdp: bool = False,
                 **kwargs):
        if use_fsdp:
            raise ConfigError('use_fsdp', 'FSDP is not supported',
                               'Remove use_fsdp from optim_wrapper.')
        from mmengine.device import get_device
        if get_device() != 'cpu':
            super().__init__(loss_scale=loss_scale, dtype=dtype, **kwargs)
            return
        if dtype not in (None, 'bfloat16', torch.bfloat16):
            raise ConfigError(
                'dtype', f'CPU autocast supports only bfloat16, got {dtype}',
                "Set optim_wrapper.dtype='bfloat16' or train on a GPU.")
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        if isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            scaler_args = dict(init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            scaler_args = dict(loss_scale)
        elif loss_scale == 'dynamic':
            scaler_args = {}
        else:
            raise TypeError('loss_scale must be of type float, dict, or '
                            f'"dynamic", but got {loss_scale}')
        self.loss_scaler = torch.amp.GradScaler('cpu', **scaler_args)
        self.cast_dtype = torch.bfloat16


class AmpSharpnessAwareMixin(SharpnessAwareMixin):
    """AMP specifics of the two-pass step: scaled gradients, autocast,
    overflow handling (the engine skips a non-finite pass, and the scaler
    skips the step and backs off)."""

    _amp = True

    def _forward_context(self):
        from mmengine.runner.amp import autocast
        return autocast(dtype=self.cast_dtype)

    def _grad_scale(self) -> Optional[Tensor]:
        return grad_scale_of(self.loss_scaler)
