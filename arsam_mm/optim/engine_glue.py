"""What every mmengine wrapper over the engine shares (the SAM family and
MSAM): the refusals and the model binding."""
from typing import Optional

from mmengine.model import is_model_wrapper
from torch import nn

from arsam.engine import SharpnessAwareEngine
from arsam.policies import TwoPassPolicy

from ._checks import (
    check_unknown_arguments,
    refuse_amp_arguments,
    refuse_unsupported_model,
)

__all__ = ['EngineGlue', 'unwrap']


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside mmengine's DDP/FSDP wrappers (the glue's and the
    hooks' one way to reach it; the plain API takes DDP's ``module``)."""
    return model.module if is_model_wrapper(model) else model


class EngineGlue:
    """What every wrapper over the engine shares: the refusals and the
    model binding (SAM's two-pass family and MSAM alike)."""

    def _init_engine(self, optimizer, kwargs: dict, **engine_args) -> None:
        """Before ``OptimWrapper.__init__``: it copies ``rho`` from the
        param groups the engine sets."""
        refuse_amp_arguments(type(self), kwargs)
        check_unknown_arguments(type(self), kwargs)
        self.engine = SharpnessAwareEngine(
            optimizer, name=type(self).__name__, **engine_args)
        self._model: Optional[nn.Module] = None

    def initialize_count_status(self, model: nn.Module, init_counts: int,
                                max_counts: int) -> None:
        # Refuse an unsupported model, or an exclude that leaves nothing
        # to perturb, before any iteration runs.
        refuse_unsupported_model(self, model)
        self.engine.perturbed.select(unwrap(model), self.optimizer)
        super().initialize_count_status(model, init_counts, max_counts)

    def _bind(self, model: nn.Module) -> None:
        if model is not self._model:
            refuse_unsupported_model(self, model)
            self.engine.bind(unwrap(model))
            self._model, self._inner = model, unwrap(model)

    @property
    def policy(self) -> TwoPassPolicy:
        return self.engine.policy

    @property
    def rho(self) -> float:
        return self.engine.rho

    @property
    def sam_iters(self) -> int:
        return self.engine.sam_iters

    @property
    def total_iters(self) -> int:
        return self.engine.total_iters
