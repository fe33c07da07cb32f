"""A second pass on a share of the batch (``second_pass_share``).

SAM's second pass costs a full forward/backward at ``w + e``. ESAM (Du et
al., ICLR 2022) and AUSAM (Deng, Pang and Zhang, AAAI 2025) pay less per
SAM step instead of taking fewer: the perturbation comes from the whole
batch's gradient, the gradient at ``w + e`` from part of it. Here the part
is drawn uniformly (AUSAM's sampling without its per-example score; ESAM's
choice by loss rise needs per-example losses, which mmengine's
``loss`` mode does not return), from the batch as the data preprocessor
left it, so the second pass sees the same augmented images as the first.

The mean loss over the share estimates the mean loss over the batch, so
the gradient keeps its scale. The draw uses torch's global generator: a
seeded run draws the same shares again.
"""
import torch
from torch import Tensor

from ._checks import ConfigError, check_number

__all__ = ['check_share', 'take_share']

KEY = 'second_pass_share'


def check_share(share) -> None:
    """``second_pass_share`` is in (0, 1]."""
    check_number(KEY, share, low=0, open_low=True, high=1)


def _size(inputs) -> int:
    return inputs.shape[0] if isinstance(inputs, Tensor) else len(inputs)


def take_share(batch, share: float, owner: str):
    """``batch`` (the data preprocessor's output: ``inputs`` and
    ``data_samples``) cut to ``round(share * N)`` of its ``N`` examples (at
    least one), drawn without replacement, in their order. ``share == 1``
    returns the batch itself."""
    if share >= 1:
        return batch
    inputs = batch.get('inputs') if isinstance(batch, dict) else None
    if inputs is None or not isinstance(inputs, (Tensor, list, tuple)):
        raise ConfigError(
            KEY, f"{owner} can only cut a batch whose data preprocessor "
            "returns dict(inputs=<tensor or list>, data_samples=...), as "
            'mmseg, mmpose and mmpretrain models do; this one returned '
            f'{type(batch).__name__}' + (
                f' with keys {sorted(batch)}' if isinstance(batch, dict)
                else ''), f'Remove optim_wrapper.{KEY} (1.0: the whole '
            'batch).')
    size = _size(inputs)
    keep = min(size, max(1, round(share * size)))
    if keep == size:
        return batch
    index = torch.randperm(size)[:keep].sort().values
    cut = dict(batch)
    for key, value in batch.items():
        if isinstance(value, Tensor) and value.dim() and value.shape[0] == size:
            cut[key] = value[index.to(value.device)]
        elif isinstance(value, (list, tuple)) and len(value) == size:
            cut[key] = [value[i] for i in index.tolist()]
    return cut
