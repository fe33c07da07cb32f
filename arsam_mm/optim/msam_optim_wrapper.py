"""MSAM: sharpness-aware training at SGD's cost.

Becker, Altrock, Risse, "Momentum-SAM: Sharpness Aware Minimization without
Computational Overhead", arXiv 2401.12033 (authors' code:
MarlonBecker/MSAM). One forward/backward per iteration, taken at
``w - rho * v / ||v||`` where ``v`` is the base optimizer's momentum
(SGD's ``momentum_buffer``, Adam's ``exp_avg``); the gradient there drives
the ordinary step from ``w``. ``docs/algorithms.md``, "Peers".

The perturbation must be in place before the forward, so it is applied in
``optim_context`` (which ``BaseModel.train_step`` enters before the data
preprocessor and the forward) and removed, bit for bit, right after the
backward in ``update_params``; checkpoints, validation and hooks outside
the training step always see ``w``. Until the optimizer has a momentum
(the first step) the pass runs at ``w``. Which parameters move and by how
much is shared with SAM (``perturbed_params.py``): ``exclude``, quantizer
step sizes never, per-group ``rho`` in the param groups.
"""
from contextlib import contextmanager
from typing import Optional, Sequence, Union

from torch import Tensor, nn

from ._checks import check_number, check_unknown_arguments
from .perturbed_params import PerturbedParams, put_rho_in_param_groups
from .sam_optim_wrapper import unwrap

__all__ = ['MomentumSAMMixin']

_MOMENTUM_KEYS = ('momentum_buffer', 'exp_avg')


class MomentumSAMMixin:
    """The MSAM step over any mmengine optimizer wrapper.

    Args:
        optimizer: the base optimizer; it must keep a momentum (SGD with
            ``momentum > 0``, Adam/AdamW).
        rho (float): radius of the step against the momentum (the authors
            use larger values than SAM's, e.g. 0.3 for SGD on CIFAR).
        eps (float): added to ``||v||``. Defaults to 1e-12.
        exclude (str | list[str], optional): regexes over parameter names
            never perturbed.
        **kwargs: mmengine wrapper arguments (``clip_grad``, ...).
    """

    def __init__(self, optimizer, rho: float = 0.3, eps: float = 1e-12,
                 exclude: Optional[Union[str, Sequence[str]]] = None,
                 **kwargs):
        check_unknown_arguments(type(self), kwargs)
        check_number('rho', rho, low=0, open_low=True)
        check_number('eps', eps, low=0)
        self.selection = PerturbedParams(exclude)
        put_rho_in_param_groups(optimizer, rho)
        super().__init__(optimizer=optimizer, **kwargs)
        self.rho, self.eps = rho, eps
        self._model: Optional[nn.Module] = None

    def _momenta(self):
        """The momentum of each perturbed parameter (None: none yet)."""
        states = (self.optimizer.state.get(p, {})
                  for p in self.selection.perturbed)
        return [next((s[k] for k in _MOMENTUM_KEYS if k in s), None)
                for s in states]

    def _perturb(self, model: nn.Module) -> None:
        if model is not self._model:
            self.selection.select(unwrap(model), self.optimizer)
            self._model = model
        momenta = self._momenta()
        if any(m is not None for m in momenta):  # none before the 1st step
            self.selection.move_along(self.optimizer, momenta, sign=-1.0,
                                      eps=self.eps)

    @contextmanager
    def optim_context(self, model: nn.Module):
        self._perturb(model)
        with self.selection.restored_on_error(), \
                super().optim_context(model):
            yield

    def update_params(self,
                      loss: Tensor,
                      step_kwargs: Optional[dict] = None,
                      zero_kwargs: Optional[dict] = None) -> None:
        loss = self.scale_loss(loss)
        self.backward(loss)
        self.selection.restore()  # the step starts from w
        if self.should_update():
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))

    def __repr__(self) -> str:
        return f'{super().__repr__()}\nMSAM rho (default): {self.rho}'
