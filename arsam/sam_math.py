"""The arithmetic of SAM, ASAM and the ARSAM decomposition.

Pure functions over lists of tensors built on ``torch._foreach_*``: no
Python loop over parameters, no host synchronisation. The numbered steps
refer to ``docs/algorithms.md`` (SAM: Foret et al., ICLR 2021; ASAM: Kwon et al.,
ICML 2021; PSF: Deng & Pang, arXiv 2510.03763, section 3).

A model split across devices (pipeline parallel, ``device_map``) gives
lists on several devices: norms and the products with a norm-derived
0-dim tensor are then taken per (device, dtype) group, as ``torch.optim``
groups its foreach steps (``torch.utils._foreach_utils``, one C++ pass);
one group, the common case, takes the plain path.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor
from torch.utils._foreach_utils import _group_tensors_by_device_and_dtype

__all__ = [
    'tensor_norms', 'global_norm', 'dot', 'sam_perturbation', 'clone_tensors',
    'psf_from_grads_', 'mix_psf_', 'passes_vs_sam', 'foreach_scalar',
    'device_dtype_groups', 'TINY'
]

#: The floor of a norm that divides (``clamp_min``).
TINY = 1e-12


def passes_vs_sam(sam_rate: float, second_pass_share: float = 1.0) -> float:
    """Forward/backward passes of a run with ``sam_rate`` two-pass
    iterations, as a fraction of SAM's (two per iteration), in examples: a
    second pass on ``second_pass_share`` of the batch counts that much."""
    return (1 + sam_rate * second_pass_share) / 2


def device_dtype_groups(
        tensors: List[Tensor]) -> Optional[List[Tuple[List[Tensor], List[int]]]]:
    """``(tensors, positions)`` per (device, dtype), or None when all
    share one device and dtype."""
    grouped = _group_tensors_by_device_and_dtype([tensors], with_indices=True)
    if len(grouped) == 1:
        return None
    return [(lists[0], positions) for lists, positions in grouped.values()]


def _per_group(tensors: List[Tensor], factor: Tensor, op) -> List[Tensor]:
    """``op(group, factor on the group's device)`` per group, the results
    back in the order of ``tensors``."""
    out: List[Optional[Tensor]] = [None] * len(tensors)
    for group, positions in device_dtype_groups(tensors):
        results = op(group, factor.to(group[0].device))
        for position, result in zip(positions, results or group):
            out[position] = result
    return out


def foreach_scalar(op, tensors: List[Tensor], factor):
    """``op(tensors, factor)`` for a ``torch._foreach_*`` op and a float or
    0-dim tensor ``factor``, which is brought to each device of a split
    model (the results in the order of ``tensors``)."""
    if isinstance(factor, Tensor) and device_dtype_groups(tensors):
        return _per_group(tensors, factor, op)
    return op(tensors, factor)


def tensor_norms(tensors: List[Tensor]) -> Tensor:
    """The L2 norm of each of ``tensors``, as a 1-D tensor (one pass);
    ``vector_norm`` of it, or of a slice, is the norm of those together.
    Norms of a split model's tensors are gathered on the first one's
    device."""
    groups = device_dtype_groups(tensors)
    if groups is None:
        return torch.stack(torch._foreach_norm(tensors))
    device = tensors[0].device
    out: List[Optional[Tensor]] = [None] * len(tensors)
    for group, positions in groups:
        norms = torch.stack(torch._foreach_norm(group)).to(device)
        for position, norm in zip(positions, norms.unbind()):
            out[position] = norm
    return torch.stack(out)


def global_norm(tensors: List[Tensor]) -> Tensor:
    """L2 norm of all ``tensors`` taken together, as a 0-dim tensor."""
    return torch.linalg.vector_norm(tensor_norms(tensors))


def to_device(value, device):
    """``value`` moved to ``device`` if it is a tensor and ``device`` is
    given (checkpoint loading)."""
    if isinstance(value, Tensor) and device is not None:
        return value.to(device)
    return value


def dot(a: List[Tensor], b: List[Tensor]) -> Tensor:
    """Global inner product of two aligned tensor lists, loop-free and
    without a host sync: ``<a, b> = (||a + b||^2 - ||a - b||^2) / 4``."""
    return (global_norm(torch._foreach_add(a, b))**2 -
            global_norm(torch._foreach_sub(a, b))**2) / 4


def clone_tensors(tensors: List[Tensor]) -> List[Tensor]:
    """Copies of ``tensors`` (one fused kernel per dtype/device group)."""
    return torch._foreach_mul(tensors, 1.0)


@torch.no_grad()
def sam_perturbation(
        params: List[Tensor],
        grads: List[Tensor],
        rho: float,
        eps: float = 1e-12,
        adaptive: bool = False,
        eta: float = 0.01,
        scaled: Optional[List[bool]] = None,
        norm: Optional[Tensor] = None) -> Tuple[List[Tensor], Tensor]:
    """The ascent step ``e`` of SAM (step 2) or ASAM.

    SAM:  ``e = rho * g / (||g|| + eps)``.
    ASAM: ``e = rho * T^2 g / (||T g|| + eps)`` with ``T = |w| + eta`` on
    the tensors flagged in ``scaled`` (all when None) and ``T = 1`` on the
    others: the official ASAM code scales weights only, not biases.

    The direction is invariant to a common scale of ``grads``, so AMP-scaled
    gradients give the same ``e`` as unscaled ones. ``norm``, if given, is
    ``||g||`` already computed by the caller (SAM only; ASAM's norm is of
    ``T g``).

    Returns:
        tuple: the perturbation (new tensors) and the norm it divided by.
    """
    if adaptive:
        scale = torch._foreach_abs(params)
        torch._foreach_add_(scale, eta)
        if scaled is not None and not all(scaled):
            unit = [t for t, flag in zip(scale, scaled) if not flag]
            torch._foreach_mul_(unit, 0.0)
            torch._foreach_add_(unit, 1.0)
        scaled_grads = torch._foreach_mul(scale, grads)
        norm = global_norm(scaled_grads)
        torch._foreach_mul_(scaled_grads, scale)
        perturbation = scaled_grads
        foreach_scalar(torch._foreach_mul_, perturbation, rho / (norm + eps))
    else:
        if norm is None:
            norm = global_norm(grads)
        perturbation = foreach_scalar(torch._foreach_mul, grads,
                                      rho / (norm + eps))
    return perturbation, norm


@torch.no_grad()
def psf_from_grads_(first_grads: List[Tensor],
                    sam_grads: List[Tensor],
                    grad_scale: Optional[Tensor] = None):
    """The PSF ``g_s - g`` (``docs/algorithms.md``) in the form it is
    stored: ``first_grads`` are overwritten with ``g - g_s`` in the
    gradients' own units (one fused pass, no allocation), and the returned
    ``psf_scale`` says what that holds, ``PSF * psf_scale``: ``-1``, or
    ``-grad_scale`` when both lists carry the AMP loss scale. Neither the
    sign nor the scale costs a pass over the tensors.

    Returns:
        tuple: ``first_grads`` and ``psf_scale`` (float or 0-dim tensor).
    """
    torch._foreach_sub_(first_grads, sam_grads)  # g - g_s
    return first_grads, (-1.0 if grad_scale is None else -grad_scale)


@torch.no_grad()
def mix_psf_(grads: List[Tensor],
             psf: List[Tensor],
             coef: float,
             grad_scale: Optional[Tensor] = None,
             psf_scale=1.0,
             stored: Optional[List[Optional[Tensor]]] = None):
    """ARSAM reuse (section 3): ``g <- g + coef * PSF`` in place.

    ``psf`` holds ``PSF * psf_scale`` (:func:`psf_from_grads_`). With float
    scales, one fused add. When ``grads`` carry an AMP loss scale (or
    ``psf_scale`` is a tensor) the PSF is brought to their scale without
    reading either scale on the host and without a copy: the tensors of
    ``stored`` (the whole store, ``psf`` among them; ``psf`` when None;
    None entries skipped) are rescaled in place to hold
    ``coef * grad_scale * PSF`` and added.

    Returns:
        the ``psf_scale`` that the store holds afterwards.
    """
    if grad_scale is None and not isinstance(psf_scale, Tensor):
        torch._foreach_add_(grads, psf, alpha=coef / psf_scale)
        return psf_scale
    factor = coef * (1.0 if grad_scale is None else grad_scale) / psf_scale
    targets = psf if stored is None else [t for t in stored if t is not None]
    foreach_scalar(torch._foreach_mul_, targets, factor)
    torch._foreach_add_(grads, psf)
    return psf_scale * factor
