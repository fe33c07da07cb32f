"""Late-phase SAM: the base optimizer first, SAM for the end of the run.

Zhou et al., "Sharpness-Aware Minimization Efficiently Selects Flatter
Minima Late In Training", ICLR 2025 (arXiv 2410.10373; authors' code:
zzp1012/SAM-in-Late-Phase). SAM applied only in the last part of
training reaches nearly the accuracy and flatness of SAM applied
throughout: it leaves the minimum the base optimizer found and settles in
a flatter one nearby, and does so quickly.

SAM on the last ``share`` of the run's steps costs ``(1 + share) / 2`` of
SAM's forward/backward passes (0.6x at 0.2), known before training, the
same cost as ARSAM's default budget: it is the equal-budget control for
*when* the two-pass steps come, as periodic SAM and RST are for how many.
No reuse on the plain steps.
"""
import math

from .. import _log
from .._checks import check_number
from ..sam_math import passes_vs_sam
from .base import TwoPassPolicy
from .budget import run_length_unknown

__all__ = ['LatePhaseSAMPolicy']


class LatePhaseSAMPolicy(TwoPassPolicy):
    """Plain steps, then SAM on the last ``floor(share * max_iters)``.

    Args:
        share (float): share of the run's steps, at its end, that take two
            passes. Defaults to 0.2 (0.6x SAM's passes).
    """

    needs_run_length = True

    def __init__(self, share: float = 0.2):
        check_number('share', share, low=0, high=1, open_low=True)
        self.share = share
        self.iteration = 0
        self.switch_at = None  # the first two-pass step

    def on_train_start(self, max_iters, epoch_length=None):
        super().on_train_start(max_iters, epoch_length)
        if not max_iters:
            return
        sam_steps = int(math.floor(self.share * max_iters))
        self.switch_at = max_iters - sam_steps
        _log.info(
            f'Late-phase SAM: plain steps up to step {self.switch_at}, then '
            f'{sam_steps} of {max_iters} steps take two passes '
            f"({passes_vs_sam(sam_steps / max_iters):.2f}x SAM's passes).")

    def take_two_passes(self):
        if self.switch_at is None:
            raise run_length_unknown('Late-phase SAM', 'share')
        take = self.iteration >= self.switch_at
        self.iteration += 1
        return take

    def state_dict(self):
        return dict(iteration=self.iteration)

    def load_state_dict(self, state, device=None):
        self.iteration = state['iteration']
