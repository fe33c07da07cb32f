"""MSAM: sharpness-aware training at SGD's cost.

Becker, Altrock, Risse, "Momentum-SAM: Sharpness Aware Minimization without
Computational Overhead", arXiv 2401.12033 (authors' code:
MarlonBecker/MSAM). One forward/backward per iteration, taken at
``w - rho * v / ||v||`` where ``v`` is the base optimizer's momentum
(SGD's ``momentum_buffer``, Adam's ``exp_avg``; ``arsam/momentum_sam.py``);
the gradient there drives the ordinary step from ``w``.
``docs/algorithms.md``, "Peers".

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

from arsam.momentum_sam import move_against_momentum

from .engine_glue import EngineGlue

__all__ = ['MomentumSAMMixin']


class MomentumSAMMixin(EngineGlue):
    """The MSAM step over any mmengine optimizer wrapper, on the same
    engine and with the same refusals as SAM's.

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
        self._init_engine(optimizer, kwargs, rho=rho, eps=eps,
                          exclude=exclude)
        super().__init__(optimizer=optimizer, **kwargs)

    @contextmanager
    def optim_context(self, model: nn.Module):
        self._bind(model)
        perturbed = self.engine.perturbed
        move_against_momentum(perturbed, self.optimizer, self.engine.eps)
        with perturbed.restored_on_error(), super().optim_context(model):
            yield

    def update_params(self,
                      loss: Tensor,
                      step_kwargs: Optional[dict] = None,
                      zero_kwargs: Optional[dict] = None) -> None:
        loss = self.scale_loss(loss)
        self.backward(loss)
        self.engine.perturbed.restore()  # the step starts from w
        if self.should_update():
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))

    def __repr__(self) -> str:
        return f'{super().__repr__()}\nMSAM rho (default): {self.rho}'
