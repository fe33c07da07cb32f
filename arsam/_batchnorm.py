"""BatchNorm during the perturbed pass: normalise with the batch, record
nothing (SAM's second pass must not update the running statistics)."""
from contextlib import contextmanager
from typing import List

from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['batchnorm_stats_frozen']


@contextmanager
def batchnorm_stats_frozen(batchnorms: List[_BatchNorm]):
    """With track_running_stats off in train mode, BN normalises with batch
    statistics and updates neither running stats nor num_batches_tracked
    (a momentum of 0 would still count batches)."""
    frozen = [m for m in batchnorms if m.training and m.track_running_stats]
    for m in frozen:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in frozen:
            m.track_running_stats = True
