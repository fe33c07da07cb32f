"""MSAM: sharpness-aware training at SGD's cost.

Becker, Altrock, Risse, "Momentum-SAM: Sharpness Aware Minimization without
Computational Overhead", arXiv 2401.12033 (authors' code:
MarlonBecker/MSAM). One forward/backward per iteration, taken at
``w - rho * v / ||v||`` where ``v`` is the base optimizer's momentum
(SGD's ``momentum_buffer``, Adam's ``exp_avg``); the gradient there drives
the ordinary step from ``w``. ALGORITHM.md section 4.

The perturbation must be in place before the forward, so it is applied in
``optim_context`` (which ``BaseModel.train_step`` enters before the data
preprocessor and the forward) and removed, bit for bit, right after the
backward in ``update_params``; checkpoints, validation and hooks outside
the training step always see ``w``. Until the optimizer has a momentum
(the first step) the pass runs at ``w``.
"""
from contextlib import contextmanager
from typing import Optional

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import Tensor, nn

from ._checks import check_number
from .sam_math import clone_tensors, momentum_perturbation
from .sam_optim_wrapper import AmpOnAnyDevice

__all__ = ['MSAMOptimWrapper', 'AmpMSAMOptimWrapper', 'MomentumSAMMixin']

_MOMENTUM_KEYS = ('momentum_buffer', 'exp_avg')


class MomentumSAMMixin:
    """The MSAM step over any mmengine optimizer wrapper.

    Args:
        optimizer: the base optimizer; it must keep a momentum (SGD with
            ``momentum > 0``, Adam/AdamW).
        rho (float): radius of the step against the momentum (the authors
            use larger values than SAM's, e.g. 0.3 for SGD on CIFAR).
        eps (float): added to ``||v||``. Defaults to 1e-12.
        **kwargs: mmengine wrapper arguments (``clip_grad``, ...).
    """

    def __init__(self, optimizer, rho: float = 0.3, eps: float = 1e-12,
                 **kwargs):
        check_number('rho', rho, low=0, open_low=True)
        check_number('eps', eps, low=0)
        super().__init__(optimizer=optimizer, **kwargs)
        self.rho, self.eps = rho, eps
        self._saved: Optional[tuple] = None

    def _momenta(self):
        params, momenta = [], []
        for group in self.optimizer.param_groups:
            for p in group['params']:
                state = self.optimizer.state.get(p, {})
                buf = next((state[k] for k in _MOMENTUM_KEYS if k in state),
                           None)
                if p.requires_grad and buf is not None:
                    params.append(p)
                    momenta.append(buf)
        return params, momenta

    @torch.no_grad()
    def _perturb(self) -> None:
        params, momenta = self._momenta()
        if not params:
            return  # no momentum before the first step: a plain pass
        self._saved = (params, clone_tensors(params))
        torch._foreach_add_(
            params, momentum_perturbation(momenta, self.rho, self.eps))

    @torch.no_grad()
    def _restore(self) -> None:
        if self._saved is not None:
            params, weights = self._saved
            torch._foreach_copy_(params, weights)
            self._saved = None

    @contextmanager
    def optim_context(self, model: nn.Module):
        self._perturb()
        try:
            with super().optim_context(model):
                yield
        except BaseException:
            self._restore()
            raise

    def update_params(self,
                      loss: Tensor,
                      step_kwargs: Optional[dict] = None,
                      zero_kwargs: Optional[dict] = None) -> None:
        loss = self.scale_loss(loss)
        self.backward(loss)
        self._restore()  # the step starts from w
        if self.should_update():
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))

    def __repr__(self) -> str:
        return f'{super().__repr__()}\nMSAM rho: {self.rho}'


@OPTIM_WRAPPERS.register_module()
class MSAMOptimWrapper(MomentumSAMMixin, OptimWrapper):
    """MSAM (Becker et al., arXiv 2401.12033): one pass at
    ``w - rho * v / ||v||``, SGD's cost.

    Examples:
        >>> optim_wrapper = dict(
        ...     type='MSAMOptimWrapper', rho=0.3,
        ...     optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
    """


@OPTIM_WRAPPERS.register_module()
class AmpMSAMOptimWrapper(MomentumSAMMixin, AmpOnAnyDevice):
    """:class:`MSAMOptimWrapper` with mixed precision."""

