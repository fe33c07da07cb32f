"""The interface between the sharpness-aware engine and a schedule.

A *policy* answers two questions the optimizer wrapper does not: which
iterations take the second (perturbed) pass, and what to do with the
gradient of the one-pass iterations. The engine never reads a policy's
attributes; it only makes these calls.

Once per run:

* :meth:`bind` when the engine knows how many tensors it perturbs;
* :meth:`on_train_start` with the run's length at its first iteration
  (resume included).

Per optimizer step (one accumulation cycle):

1. :meth:`take_two_passes`, before the forward (DDP must know then):
   whether the step may take two passes. A policy that decides from the
   first-pass gradient (``decides_after_first_pass``, AE-SAM) answers True
   here and :meth:`confirm_two_passes` after the first backward; its first
   pass is then always all-reduced.
2. A one-pass step: after its backward, :meth:`on_one_pass_step` with
   ``g``, which it may edit in place before the base optimizer steps.
3. A two-pass (SAM) step, after the first backward:

   a. :meth:`keep_first_grads` with ``g``: the policy keeps a copy of the
      tensors it needs (or None); the engine averages that copy over ranks
      under local SAM, then runs the perturbed pass;
   b. :meth:`on_sam_step` with the kept copy and ``g_s``. It calls
      ``check(norm)`` once, before it changes any of its state: ``norm``
      is a norm it computed on the way that is finite only if ``g_s`` is
      (or None, and the engine reads ``g_s``). ``check`` returns False, or
      raises, when a pass was not finite; the policy then keeps its state
      as it was (and drops what :meth:`keep_first_grads` may have written
      into it) and returns False.

A policy holds no state between two calls of one step: what passes from
one call to the next goes through the engine (the kept copy, ``check``).

Gradients arrive as lists aligned with the wrapper's perturbed
parameters; ``index`` lists the positions present when some parameters
got no gradient this step (``None`` when all did). Under AMP they carry
the loss scale ``grad_scale`` (a 0-dim tensor; None in fp32).
"""
from typing import Callable, Dict, List, Optional

from torch import Tensor

from .._checks import policy_argument_names

__all__ = ['TwoPassPolicy', 'AlwaysSAMPolicy', 'FiniteCheck']

#: ``check(norm) -> bool`` (see the module docstring).
FiniteCheck = Callable[[Optional[Tensor]], bool]


class TwoPassPolicy:
    """Base class: subclasses override what their method changes."""

    #: Whether the policy needs the run's length (a budget over the run).
    needs_run_length = False

    def bind(self, num_params: int) -> None:
        """Called once the wrapper knows how many tensors it perturbs;
        raises if a resumed state does not fit them."""
        self.num_params = num_params

    def on_train_start(self, max_iters: int,
                       epoch_length: Optional[int] = None) -> None:
        """The run's length in optimizer steps and, where known, the steps
        per epoch (one pass over the train dataloader)."""
        self.max_iters = max_iters

    #: Whether :meth:`confirm_two_passes` decides after the first pass.
    decides_after_first_pass = False

    def take_two_passes(self) -> bool:
        raise NotImplementedError

    def confirm_two_passes(self, grads: List[Tensor],
                           grad_scale: Optional[Tensor]) -> bool:
        """After the first backward, for a policy that
        ``decides_after_first_pass``: whether the step takes its second
        pass after all."""
        return True

    def keep_first_grads(self, grads: List[Tensor],
                         index: Optional[List[int]]) -> Optional[List[Tensor]]:
        """A copy of ``g`` that :meth:`on_sam_step` will need, or None
        (default: the policy needs none)."""
        return None

    def on_sam_step(self, first_grads: Optional[List[Tensor]],
                    sam_grads: List[Tensor], grad_scale: Optional[Tensor],
                    index: Optional[List[int]],
                    first_norms: Optional[Tensor],
                    check: FiniteCheck) -> bool:
        """Record what later one-pass steps reuse, once ``check`` passed.
        ``first_grads``: what :meth:`keep_first_grads` returned;
        ``first_norms``: the per-tensor norms of ``g`` (a 1-D tensor in the
        same units) when the engine has them, else None. Returns whether the
        step was finite."""
        return check(None)

    def on_one_pass_step(self, grads: List[Tensor],
                         grad_scale: Optional[Tensor],
                         index: Optional[List[int]]) -> None:
        """Edit the one-pass gradient in place (default: plain SGD step)."""

    def log_scalars(self) -> Dict[str, object]:
        """Scalars for the message hub (floats or 0-dim tensors)."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict, device=None) -> None:
        pass


class AlwaysSAMPolicy(TwoPassPolicy):
    """Plain SAM/ASAM: every iteration takes two passes."""

    def take_two_passes(self) -> bool:
        return True


def build_policy(policy_cls, kwargs: dict):
    """Build ``policy_cls`` from its arguments in ``kwargs``, which are
    taken out of it (the rest belongs to the optimizer or wrapper); a
    value of an earlier release is refused first (``migrations.py``)."""
    from ..migrations import refuse_removed_values
    arguments = {name: kwargs.pop(name)
                 for name in policy_argument_names(policy_cls)
                 if name in kwargs}
    refuse_removed_values(policy_cls.__name__, arguments)
    return policy_cls(**arguments)
