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
import logging
from typing import Optional

import torch
from mmengine.logging import print_log
from torch import Tensor

from ._checks import ConfigError, check_number

__all__ = ['batch_size', 'check_share', 'take_share', 'warn_if_reused']

KEY = 'second_pass_share'


def check_share(share) -> None:
    """``second_pass_share`` is in (0, 1]."""
    check_number(KEY, share, low=0, open_low=True, high=1)


def warn_if_reused(policy, share: float, owner: str) -> None:
    """A policy that reuses what its SAM steps measure (ARSAM's PSF,
    LookSAM's direction) reuses a share's sampling noise with it: the PSF
    of a half-batch second pass, ``g_share(w + e) - g_batch(w)``, also
    holds ``g_share(w) - g_batch(w)``, as large as a batch's own gradient
    noise. Measured in docs/benchmarks.md; the user is told once, at
    build."""
    from arsam.policies import TwoPassPolicy
    reuses = (type(policy).on_one_pass_step
              is not TwoPassPolicy.on_one_pass_step)
    if share < 1 and reuses:
        print_log(
            f'{owner}: {KEY}={share:g} with {type(policy).__name__}, which '
            'reuses what its SAM steps measure on its one-pass steps: the '
            "share's sampling noise is reused with it (ARSAM at 0.5, 0.55x "
            "SAM's passes: ||PSF||/||g|| 0.91 instead of 0.16 and -0.17 of "
            "SAM's gain kept in the 480-iteration Fashion-MNIST run, 0.81 "
            'in noisy40, against 1.08 and 0.99 on whole batches; '
            'docs/benchmarks.md "Issue 39: the frontier"). It suits '
            'SAMOptimWrapper (ESAM-style).', logger='current',
            level=logging.WARNING)


def batch_size(inputs) -> Optional[int]:
    """Examples in a model's ``inputs`` (a batched tensor or a list of
    them), None when it cannot tell."""
    if isinstance(inputs, Tensor) and inputs.dim():
        return inputs.shape[0]
    if isinstance(inputs, (list, tuple)):
        return len(inputs)
    return None


def take_share(batch, share: float, owner: str):
    """``batch`` (the data preprocessor's output: ``inputs`` and
    ``data_samples``) cut to ``round(share * N)`` of its ``N`` examples (at
    least one), drawn without replacement, in their order. ``share == 1``
    returns the batch itself."""
    if share >= 1:
        return batch
    inputs = batch.get('inputs') if isinstance(batch, dict) else None
    size = batch_size(inputs)
    if size is None:
        raise ConfigError(
            KEY, f"{owner} can only cut a batch whose data preprocessor "
            "returns dict(inputs=<tensor or list>, data_samples=...), as "
            'mmseg, mmpose and mmpretrain models do; this one returned '
            f'{type(batch).__name__}' + (
                f' with keys {sorted(batch)}' if isinstance(batch, dict)
                else ''), f'Remove optim_wrapper.{KEY} (1.0: the whole '
            'batch).')
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
