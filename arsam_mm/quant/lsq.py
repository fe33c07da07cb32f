"""LSQ fake quantization (Esser et al., "Learned Step Size Quantization",
ICLR 2020; docs/algorithms.md, "Quantization-aware training"): the arithmetic only.

``q(x) = round(clamp(x / s, Qn, Qp)) * s`` with a straight-through
estimator for ``round`` and the gradient of ``s`` scaled by
``1 / sqrt(numel * Qp)``.
"""
import math
from typing import Tuple

import torch
from torch import Tensor

__all__ = ['quant_range', 'lsq_init_step', 'lsq_fake_quant', 'lsq_to_int']


def quant_range(bits: int, signed: bool) -> Tuple[int, int]:
    """``(Qn, Qp)`` of a ``bits``-bit integer grid."""
    if signed:
        return -2**(bits - 1), 2**(bits - 1) - 1
    return 0, 2**bits - 1


def lsq_init_step(x: Tensor, qp: int, dim=None) -> Tensor:
    """LSQ's initial step ``2 * mean(|x|) / sqrt(Qp)`` (per ``dim`` slice
    when given, e.g. per output channel)."""
    if dim is None:
        mean = x.detach().abs().mean()
    else:
        mean = x.detach().abs().flatten(1).mean(1)
    return (2 * mean / math.sqrt(qp)).clamp_min(1e-8)


class _GradScale(torch.autograd.Function):
    """Identity forward (bit-exact), gradient times ``factor``."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def _round_ste(x: Tensor) -> Tensor:
    # round(x) - x is exact in floating point, so the value is round(x).
    return (x.round() - x).detach() + x


def lsq_fake_quant(x: Tensor, step: Tensor, qn: int, qp: int) -> Tensor:
    """Quantize-dequantize ``x`` with the learnable step ``step``.

    ``step`` broadcasts against ``x`` (shape ``(C, 1, ...)`` per channel).
    """
    per_step = x.numel() / step.numel()
    step = _GradScale.apply(step, 1.0 / math.sqrt(per_step * qp))
    return _round_ste(torch.clamp(x / step, qn, qp)) * step


@torch.no_grad()
def lsq_to_int(x: Tensor, step: Tensor, qn: int, qp: int) -> Tensor:
    """The integers behind :func:`lsq_fake_quant` (``int8`` for <= 8 bits):
    ``lsq_to_int(x, s) * s == lsq_fake_quant(x, s)``."""
    return torch.clamp(x / step, qn, qp).round().to(torch.int8)
