"""ARSAM's stored PSF and its reuse on one-pass iterations.

Deng & Pang, arXiv 2510.03763, section 3 (``docs/algorithms.md``, ARSAM):
a SAM iteration stores ``PSF = g_s - g``; the ``k``-th one-pass iteration
after it mixes ``beta**k * PSF`` into its fresh gradient, up to
``max_reuse`` of them, then steps plainly until the next SAM iteration.

The PSF is kept in the gradients' own units as ``scaled_psf = PSF *
psf_scale`` (``psf_scale`` is ``-1``, or minus the AMP loss scale:
``scaled_psf`` holds ``g - g_s``), so forming it is one fused subtraction
into the copy of ``g`` that :meth:`PSFReuse.keep_first_grads` made, and
neither the sign nor the scale costs a pass over the tensors.
"""
from typing import List, Optional

import torch
from torch import Tensor

from ..perturbed_params import pick
from ..sam_math import clone_tensors, foreach_scalar, mix_psf_, to_device

__all__ = ['PSFReuse']


class PSFReuse:
    """The stored PSF, its age and its mixing weight.

    Args:
        beta (float): decay of the reuse weight (``beta**k``).
        max_reuse (int): one-pass iterations that mix the stored PSF.
        average (float): weight of the newest PSF in the stored one,
            ``stored <- stored + average * (new - stored)``; 1 keeps the
            newest only (the paper).
    """

    def __init__(self, beta: float, max_reuse: int, average: float = 1.0):
        self.beta = beta
        self.max_reuse = max_reuse
        self.average = average
        self.empty = True  # no PSF to average with
        #: ``PSF * psf_scale`` per perturbed tensor (None: no PSF yet).
        self.scaled_psf: Optional[List[Optional[Tensor]]] = None
        self.psf_scale = 1.0
        self.reuse_count = max_reuse  # nothing to reuse before a SAM step
        self.coef = 0.0  # the weight of the last mix (logged)

    def keep_first_grads(self, grads: List[Tensor],
                         index: Optional[List[int]]) -> List[Tensor]:
        """A copy of ``g``, into the stored PSF's own tensors when they
        match (the new PSF replaces the old one in place)."""
        stored = pick(self.scaled_psf, index)
        if (stored is None or any(t is None for t in stored)
                or self.averaging):
            return clone_tensors(grads)
        torch._foreach_copy_(stored, grads)
        return stored

    def store(self, psf: List[Tensor], psf_scale, index: Optional[List[int]],
              num_params: int) -> None:
        """Keep ``psf`` (``PSF * psf_scale``, aligned with ``index``), or
        move the stored average towards it, and restart the reuse count."""
        if self.averaging:
            self._average_in(psf, psf_scale, index)
        elif index is None:
            self.scaled_psf = list(psf)  # a foreach op may return a tuple
        else:
            if self.scaled_psf is None:
                self.scaled_psf = [None] * num_params
            kept = set(index)
            older = [t for i, t in enumerate(self.scaled_psf)
                     if i not in kept and t is not None]
            # Tensors without a gradient now keep their PSF.
            self._to_scale(older, psf_scale)
            for pos, tensor in zip(index, psf):
                self.scaled_psf[pos] = tensor
        self.psf_scale = psf_scale
        self.reuse_count = 0
        self.coef = 1.0
        self.empty = False

    @property
    def averaging(self) -> bool:
        """Whether the next PSF moves a stored mean (not replaces it)."""
        return self.average < 1 and not self.empty

    def _to_scale(self, stored: List[Tensor], psf_scale) -> None:
        """Stored tensors to this step's scale (AMP's loss scale moves);
        nothing to do when both scales are the same float (no tensor is
        compared: that would sync with the device)."""
        if stored and (isinstance(psf_scale, Tensor)
                       or isinstance(self.psf_scale, Tensor)
                       or psf_scale != self.psf_scale):
            foreach_scalar(torch._foreach_mul_, stored,
                           psf_scale / self.psf_scale)

    def _average_in(self, psf, psf_scale, index) -> None:
        self._to_scale([t for t in self.scaled_psf if t is not None],
                       psf_scale)
        positions = range(len(psf)) if index is None else index
        old, new = [], []
        for pos, tensor in zip(positions, psf):
            if self.scaled_psf[pos] is None:
                self.scaled_psf[pos] = tensor
            else:
                old.append(self.scaled_psf[pos])
                new.append(tensor)
        if old:  # the newest PSF weighs ``average``
            torch._foreach_lerp_(old, new, self.average)

    def drop(self) -> None:
        """A pass was not finite: reuse nothing until the next SAM
        iteration. The store may hold ``g`` (:meth:`keep_first_grads`): it
        is cleared, unless it is a running mean (``average < 1``), which
        this step did not touch."""
        if not self.averaging:
            if self.scaled_psf is not None:
                torch._foreach_zero_(
                    [t for t in self.scaled_psf if t is not None])
            self.empty = True
        self.reuse_count = self.max_reuse
        self.coef = 0.0

    def mix_into(self, grads: List[Tensor], grad_scale: Optional[Tensor],
                 index: Optional[List[int]]) -> None:
        """``g += beta**k * PSF`` in place, or nothing past ``max_reuse``."""
        if self.scaled_psf is None or self.reuse_count >= self.max_reuse:
            self.coef = 0.0
            return
        self.reuse_count += 1
        # beta ** k, not a running product: float drift could add a reuse.
        self.coef = self.beta**self.reuse_count
        psf = pick(self.scaled_psf, index)
        if any(t is None for t in psf):
            keep = [i for i, t in enumerate(psf) if t is not None]
            grads, psf = pick(grads, keep), pick(psf, keep)
        self.psf_scale = mix_psf_(grads, psf, self.coef, grad_scale,
                                  self.psf_scale, stored=self.scaled_psf)

    def stored_psf(self) -> Optional[List[Optional[Tensor]]]:
        """The stored PSF ``g_s - g`` in unscaled units (new tensors)."""
        if self.scaled_psf is None:
            return None
        return [None if t is None else t / self.psf_scale
                for t in self.scaled_psf]

    def state_dict(self) -> dict:
        return dict(scaled_psf=self.scaled_psf, psf_scale=self.psf_scale,
                    reuse_count=self.reuse_count, coef=self.coef,
                    psf_empty=self.empty)

    def load_state_dict(self, state: dict, device=None) -> None:
        stored = state['scaled_psf']
        self.scaled_psf = None if stored is None else [
            to_device(t, device) for t in stored]
        self.psf_scale = to_device(state['psf_scale'], device)
        self.reuse_count = state['reuse_count']
        self.coef = state['coef']
        self.empty = state.get('psf_empty', stored is None)
