"""Finiteness checks of a two-pass iteration (one host sync per SAM
iteration, every rank alike)."""
from typing import List, Optional

import torch
from torch import Tensor

from . import _dist
from .sam_math import global_norm

__all__ = ['loss_and_grad_norm', 'check_passes_finite']


def loss_and_grad_norm(loss: Optional[Tensor], grads: Optional[List[Tensor]],
                       norm: Optional[Tensor] = None) -> Tensor:
    """``[loss, ||g||]`` on the device: finite only if every element is.
    The 2-norm is 10x cheaper than max-abs on CPU; it overflows only for
    gradients near 1e19, a divergence all the same. ``norm``: ``||g||``
    if the caller has it; ``loss`` None: a loss the driver did not pass
    (counted as finite)."""
    if norm is None:
        norm = global_norm(grads)
    loss = norm.new_zeros(()) if loss is None else loss.detach()
    return torch.stack([loss.float().to(norm.device), norm.float()])


def check_passes_finite(name: str, iteration: int, first_norms: Tensor,
                        second_norms: Tensor) -> None:
    """fp32: a non-finite loss or gradient in either pass stops the run,
    naming the iteration (1-based, as mmengine's log) and the pass, instead
    of poisoning the PSF and the schedule."""
    norms = torch.cat([first_norms, second_norms])
    finite = _dist.all_ranks_true_each(torch.isfinite(norms))
    if all(finite):
        return
    bad = finite.index(False)
    which = ('first pass (at w)', 'second pass (at the perturbed '
             'weights w + e)')[bad // 2]
    what = ('loss', 'gradient')[bad % 2]
    raise FloatingPointError(
        f'{name}: non-finite {what} in the {which} of training iteration '
        f'{iteration}. The weights are restored and nothing of this '
        'iteration was stored. Remedies: lower the learning rate or rho, '
        'or clip the gradients; an mmengine run can instead train with '
        "AMP (--amp), whose loss scaler skips such steps.")
