"""The collectives the sharpness-aware engine needs, as no-ops when not distributed."""
from typing import List

import torch
import torch.distributed as dist
from torch import Tensor
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from .sam_math import device_dtype_groups


def world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


@torch.no_grad()
def all_reduce_mean_(tensors: List[Tensor]) -> None:
    """Average ``tensors`` over ranks in place, in one flat all-reduce."""
    size = world_size()
    if size == 1 or not tensors:
        return
    groups = device_dtype_groups(tensors)
    # One flat buffer per (device, dtype): a split model's tensors cannot
    # be concatenated.
    for group in ([tensors] if groups is None else [g for g, _ in groups]):
        flat = _flatten_dense_tensors(group)
        dist.all_reduce(flat)
        flat.div_(size)
        torch._foreach_copy_(group, _unflatten_dense_tensors(flat, group))


def all_ranks_true_each(flags: Tensor) -> List[bool]:
    """Per element of the 1-D bool tensor ``flags``: true on every rank?
    One collective and one read-back for all of them."""
    if world_size() > 1:
        flags = flags.to(torch.float32)
        dist.all_reduce(flags, op=dist.ReduceOp.MIN)
    return [bool(f) for f in flags.tolist()]


def all_ranks_true(flag: Tensor) -> bool:
    """True only if ``flag`` (a bool tensor) is true on every rank."""
    return all(all_ranks_true_each(flag.reshape(1)))
