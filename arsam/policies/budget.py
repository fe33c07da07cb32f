"""A fixed budget of two-pass iterations, placed over a run.

The cost of a fast-SAM method should be known before training: with a
budget ``b`` (the share of the run's iterations that take two passes) a
run costs ``(1 + b) / 2`` of SAM's forward/backward passes, whatever its
length. :class:`SAMBudget` decides *how many* two-pass iterations each
window of ``window`` iterations gets; the policy that owns it (ARSAM)
decides *which* iterations of the window they are, and its statistics only
tilt the allocation between windows (``placement='adaptive'``).

How a window's quota is set: the budget left is spread evenly over the
iterations left (``share``), multiplied by a placement weight, times the
window length, with the fractional part carried to the next window. The
share is recomputed at every window from what is left, so a weight above
1 spends the budget early and leaves less for later, never more in total.
Near the end of the run every iteration is taken while the iterations left
are no more than the budget left, so the total equals the budget (exactly,
unless ``max_p`` caps a window below what the budget needs).

Placements (weights at run progress ``t`` in [0, 1)):

* ``'adaptive'``: ``exp(L)``, with ``L`` moved once per window by the
  authors' rule in log space, ``L += a1*dr + a2*dv`` (the relative changes
  of ``||PSF||/||g||`` and of the block variance of ``||PSF||``), clipped
  to ``[-log 4, log 4]``. A growing PSF asks for SAM iterations sooner.
* ``'uniform'``: 1, an even spread: the equal-budget control that shows
  what the statistics add (``docs/benchmarks.md``; ``'front'`` and
  ``'late'`` were studied there and removed).
"""
import math
from typing import Optional

from .. import _log
from .._checks import ConfigError
from ..sam_math import passes_vs_sam

__all__ = [
    'SAMBudget', 'RunLengthUnknownError', 'run_length_unknown', 'PLACEMENTS'
]

PLACEMENTS = ('adaptive', 'uniform')
_MAX_LOG_WEIGHT = math.log(4.0)


class RunLengthUnknownError(RuntimeError):
    """A budget over the run was asked for, but nothing told the length of
    the run (no mmengine train loop published ``max_iters``)."""


def run_length_unknown(method: str, key: str,
                       alternative: str = '') -> RunLengthUnknownError:
    """The error of ``method`` whose ``optim_wrapper.key`` is a share of a
    run whose length nothing told."""
    return RunLengthUnknownError(
        f'{method}: optim_wrapper.{key} is a share of the run, but the run '
        'length is unknown: no mmengine train loop published max_iters. '
        'Train through an mmengine Runner or FlexibleRunner'
        + (', ' if alternative else ', or ') +
        'give the plain optimizer max_steps' + alternative + '.')


class SAMBudget:
    """Counts and quotas of a budget of two-pass iterations.

    Args:
        budget (float): share of the run's iterations with two passes.
        window (int): iterations per window.
        max_p (float): at most ``window * max_p`` two-pass iterations in a
            window.
        placement (str): one of :data:`PLACEMENTS`.
        a1, a2 (float): gains of the adaptive placement.
    """

    def __init__(self, budget: float, window: int, max_p: float,
                 placement: str, a1: float, a2: float, tail: float = 0.0):
        if placement not in PLACEMENTS:
            raise ConfigError(
                'placement', f'unknown budget placement {placement!r}',
                f'Use one of {PLACEMENTS}.')
        self.budget = budget
        self.window = window
        self.max_per_window = int(math.floor(window * max_p))
        self.placement = placement
        self.a1, self.a2 = a1, a2
        self.tail = tail
        self.max_iters: Optional[int] = None
        self.total = 0  # set by start()
        self.tail_iters = 0  # the run's last iterations, all two-pass
        self.taken = 0
        self.log_weight = 0.0
        self.credit = 0.0

    def start(self, max_iters: int, warmup_iters: int) -> int:
        """The run's length (every train start, resume included); returns
        the warm-up, cut to the budget if it is longer."""
        self.max_iters = max_iters
        self.total = int(math.floor(self.budget * max_iters))
        self.tail_iters = int(math.floor(self.tail * self.total))
        spread = self.total - self.tail_iters
        if warmup_iters > spread:
            _log.info(
                f'ARSAM: the warm-up ({warmup_iters} iterations) is cut to '
                f'the budget, {spread} two-pass iterations of '
                f'{max_iters} (budget={self.budget}, tail={self.tail}).')
            warmup_iters = spread
        _log.info(
            f'ARSAM: {self.total} of {max_iters} iterations take two passes '
            f"({passes_vs_sam(self.total / max_iters):.2f}x SAM's passes), "
            f'placement={self.placement!r}'
            + (f', the last {self.tail_iters} of them at the end of the run.'
               if self.tail_iters else '.'))
        return warmup_iters

    def require_run_length(self) -> None:
        if self.max_iters is None:
            raise run_length_unknown('ARSAM', 'budget',
                                     ", or set schedule='paper' (no budget)")

    @property
    def left(self) -> int:
        return self.total - self.taken

    def record(self, took: bool) -> None:
        """One more iteration decided: ``took`` two passes or not."""
        self.taken += int(took)

    def must_take(self, iteration: int) -> bool:
        """In the tail, or the iterations left are no more than the budget
        left."""
        remaining = self.max_iters - iteration
        return self.left > 0 and (remaining <= self.tail_iters
                                  or self.left >= remaining)

    def _weight(self, d_r: float, d_v: float) -> float:
        if self.placement == 'adaptive':
            step = self.a1 * d_r + self.a2 * d_v
            if math.isfinite(step):
                self.log_weight = min(max(self.log_weight + step,
                                          -_MAX_LOG_WEIGHT), _MAX_LOG_WEIGHT)
            return math.exp(self.log_weight)
        return 1.0  # 'uniform'

    def window_quota(self, iteration: int, d_r: float = 0.0,
                     d_v: float = 0.0) -> int:
        """Two-pass iterations for the window starting at ``iteration``
        (0-based); ``d_r``, ``d_v``: the schedule statistics' changes."""
        # The tail's iterations and budget are set apart.
        remaining = self.max_iters - self.tail_iters - iteration
        left = self.left - self.tail_iters
        if remaining <= 0 or left <= 0:
            return 0
        length = min(self.window, remaining)
        wanted = (left / remaining * self._weight(d_r, d_v) *
                  length + self.credit)
        quota = int(math.floor(wanted))
        self.credit = wanted - quota
        capped = min(quota, self.max_per_window, length, left)
        if capped < quota:
            self.credit = 0.0  # what the cap refused is spread again
        return capped

    def state_dict(self) -> dict:
        return dict(taken=self.taken, log_weight=self.log_weight,
                    credit=self.credit)

    def load_state_dict(self, state: dict) -> None:
        self.taken = state['taken']
        self.log_weight = state['log_weight']
        self.credit = state['credit']
