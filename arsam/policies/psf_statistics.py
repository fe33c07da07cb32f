"""The statistics ARSAM's schedule follows (docs/algorithms.md, ARSAM).

Recorded on SAM iterations only, each history keeping its last ``window``
records in a ring buffer on the gradients' device:

* ``r``: ``||PSF|| / ||g||`` over the last ``stat_tensors`` tensors;
* ``s``: ``||PSF||`` over the same tensors (unscaled);
* ``v``: after appending ``s``, the sorted ``s`` history is cut into
  ``blocks`` equal chunks and the mean of their variances is appended.

Once per window the schedule reads ``dr`` and ``dv``, the mean relative
changes of the ``r`` and ``v`` histories, clipped to [-1, 1]: the one host
sync of the schedule. A relative change needs two records, so a history
with fewer contributes 0, and denominators are clamped away from zero.
"""
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from ..sam_math import TINY, to_device

__all__ = ['PSFStatistics']


def _chronological(buf: Tensor, count: int) -> Tensor:
    """The records of a ring buffer of capacity ``len(buf)``, oldest first."""
    capacity = buf.numel()
    if count <= capacity:
        return buf[:count]
    return torch.roll(buf, -(count % capacity))


def _mean_relative_change(seq: Tensor) -> Tensor:
    """Mean of ``(x[i+1] - x[i]) / x[i]``, clipped to [-1, 1]."""
    if seq.numel() < 2:
        return seq.new_zeros(())
    prev = seq[:-1]
    change = (seq[1:] - prev) / prev.abs().clamp_min(TINY)
    return change.mean().clamp(-1.0, 1.0)


class PSFStatistics:
    """Histories of ``r``, ``s`` and ``v`` and the last logged norms.

    Args:
        window (int): history length.
        blocks (int): chunks of the sorted ``s`` history.
        stat_tensors (int): the statistics use the last this-many tensors.
        full_histories_only (bool): make ``v`` records from a full ``s``
            history only (block variances of a filling one grow with the
            count alone, whatever the PSF does); False: from ``2 * blocks``
            values on, as the authors' code.
    """

    def __init__(self, window: int, blocks: int, stat_tensors: int,
                 full_histories_only: bool):
        self.window = window
        self.blocks = blocks
        self.stat_tensors = stat_tensors
        self.full_histories_only = full_histories_only
        self.history: Dict[str, Optional[Tensor]] = dict(r=None, s=None, v=None)
        self.counts = dict(r=0, s=0, v=0)
        #: ``psf_norm`` and ``psf_ratio`` of the last SAM iteration.
        self.last: Dict[str, Tensor] = {}

    def _push(self, key: str, value: Tensor) -> None:
        buf = self.history[key]
        if buf is None:
            buf = self.history[key] = value.new_zeros(self.window)
        buf[self.counts[key] % self.window] = value
        self.counts[key] += 1

    def record(self, psf_norms: Tensor, first_norms: Tensor,
               unscale) -> None:
        """One SAM iteration: per-tensor norms of the stored PSF and of
        ``g`` in the gradients' own units (AMP: scaled alike, so ratios
        need no unscaling); ``unscale``: the loss scale they carry."""
        tail = -self.stat_tensors
        psf_tail = torch.linalg.vector_norm(psf_norms[tail:])
        first_tail = torch.linalg.vector_norm(first_norms[tail:])
        self._push('r', psf_tail / first_tail.clamp_min(TINY))
        self._push('s', psf_tail / unscale)
        count = min(self.counts['s'], self.window)
        per_block = count // self.blocks
        full = not self.full_histories_only or count == self.window
        if per_block >= 2 and full:
            values = torch.sort(self.history['s'][:count]).values
            chunks = values[:per_block * self.blocks].view(self.blocks, -1)
            self._push('v', chunks.var(dim=1, unbiased=False).mean())
        psf_norm = torch.linalg.vector_norm(psf_norms)
        first_norm = torch.linalg.vector_norm(first_norms)
        self.last = dict(psf_norm=psf_norm / unscale,
                         psf_ratio=psf_norm / first_norm.clamp_min(TINY))

    def changes(self) -> Tuple[float, float]:
        """``(dr, dv)``, read back to the host."""
        changes = []
        for key in ('r', 'v'):
            buf = self.history[key]
            if buf is None:
                changes.append(torch.zeros(()))
            else:
                seq = _chronological(buf, self.counts[key])
                changes.append(_mean_relative_change(seq).cpu())
        d_r, d_v = torch.stack(changes).tolist()
        return d_r, d_v

    def state_dict(self) -> dict:
        return dict(history=dict(self.history), counts=dict(self.counts),
                    last=dict(self.last))

    def load_state_dict(self, state: dict, device=None) -> None:
        self.history = {k: to_device(v, device)
                        for k, v in state['history'].items()}
        self.counts = dict(state['counts'])
        self.last = {k: to_device(v, device)
                     for k, v in state['last'].items()}
