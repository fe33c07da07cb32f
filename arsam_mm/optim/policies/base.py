"""The interface between the SAM glue and a two-pass schedule.

A *policy* answers two questions the optimizer wrapper does not: which
iterations take the second (perturbed) pass, and what to do with the
gradient of the one-pass iterations. The wrapper calls, per iteration:

1. :meth:`take_two_passes` before the forward (DDP must know then); a
   policy that can only decide from the first-pass gradient returns
   ``None`` there and answers :meth:`decide_after_first_pass` instead
   (its first pass is then always all-reduced under DDP);
2. either :meth:`on_sam_step` with the first-pass gradients ``g`` (only if
   :attr:`needs_first_grads`) and the perturbed-pass gradients ``g_s``,
   or :meth:`on_one_pass_step` with ``g``, which it may edit in place.

Gradients arrive as lists aligned with the wrapper's perturbed parameters;
``index`` lists the positions present when some parameters got no
gradient this iteration (``None`` when all did).
"""
from typing import Dict, List, Optional

from torch import Tensor

__all__ = ['TwoPassPolicy', 'AlwaysSAMPolicy']


class TwoPassPolicy:
    """Base class: subclasses override what their method changes."""

    #: whether :meth:`on_sam_step` needs ``g`` (costs a gradient copy).
    needs_first_grads: bool = False

    def bind(self, num_params: int) -> None:
        """Called once the wrapper knows how many tensors it perturbs."""
        self.num_params = num_params

    def on_train_start(self, max_iters: int,
                       epoch_length: Optional[int] = None) -> None:
        """Called with the run's length (for schedules over training) and,
        under an mmengine Runner, the batches per epoch."""
        self.max_iters = max_iters

    def take_two_passes(self, epoch: int) -> Optional[bool]:
        raise NotImplementedError

    def decide_after_first_pass(self, grads: List[Tensor],
                                grad_scale: Optional[Tensor]) -> bool:
        """Only for policies whose :meth:`take_two_passes` said ``None``."""
        raise NotImplementedError

    def on_sam_step(self, first_grads: Optional[List[Tensor]],
                    sam_grads: List[Tensor], grad_scale: Optional[Tensor],
                    index: Optional[List[int]],
                    first_norms: Optional[Tensor] = None) -> None:
        """Record what later one-pass iterations reuse. ``first_norms``,
        when the glue has them, are the per-tensor norms of ``first_grads``
        (a 1-D tensor, same units), so the policy need not read ``g`` again.
        """

    def form_sam_step(self, first_grads: Optional[List[Tensor]],
                      sam_grads: List[Tensor], grad_scale: Optional[Tensor],
                      index: Optional[List[int]],
                      first_norms: Optional[Tensor] = None
                      ) -> Optional[Tensor]:
        """The part of :meth:`on_sam_step` that may run before the glue has
        checked the perturbed pass for inf/NaN: it may write only into the
        tensors it lent (:meth:`first_grads_buffer`), never into its state.
        Returns a norm it computed on the way that is finite only if
        ``sam_grads`` are (given finite ``first_grads``), so the check need
        not read ``g_s`` again; None (the default): the glue reads it.
        :meth:`on_sam_step` (finite) or :meth:`on_sam_step_skipped`
        follows, with the same arguments."""
        return None

    def first_grads_buffer(
            self, index: Optional[List[int]]) -> Optional[List[Tensor]]:
        """Tensors the glue may copy ``g`` into for :meth:`on_sam_step`
        (aligned with the gradients, ``index`` as there), or None for a
        fresh copy. Only asked when :attr:`needs_first_grads`."""
        return None

    def on_sam_step_skipped(self) -> None:
        """The perturbed pass was not finite: :meth:`on_sam_step` is not
        called for this iteration (a lent buffer may hold ``g`` now)."""

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

    def take_two_passes(self, epoch: int) -> bool:
        return True
