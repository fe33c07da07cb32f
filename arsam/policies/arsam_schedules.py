"""ARSAM's two schedules: which iterations after the warm-up take two
passes. Both draw within windows of ``window`` iterations as vSAM does
(:class:`WindowDraw`); they differ in how many a window aims at.

* :class:`BudgetSchedule` (``schedule='budget'``, the default): a fixed
  share of the run (``budget.py``); the statistics' changes move the
  quota between windows, never the total.
* :class:`PaperSchedule` (``schedule='paper'``): the authors' rule,
  ``target *= 1 + a1*dr + a2*dv`` once per window; the cost follows the
  statistics.

Each ``take(iteration, in_warmup, draw, changes)`` answers for one
iteration: ``draw`` is the policy's uniform draw for it, ``changes()``
the statistics' ``(dr, dv)`` (one host sync, asked at most once per
window).
"""
import math
import warnings
from typing import Callable, Optional, Tuple

from .budget import SAMBudget

__all__ = ['WindowDraw', 'BudgetSchedule', 'PaperSchedule']

Changes = Callable[[], Tuple[float, float]]


class WindowDraw:
    """The vSAM draw: a window aims at ``target`` two-pass iterations and
    may take ``quota_left`` more; an iteration is taken if quota is left
    and ``draw >= 1 - target/K``, or if the iterations left in the window
    are no more than the quota left."""

    def __init__(self, window: int):
        self.window = window
        self.target = 1.0
        self.pos = 0
        self.started = 0
        self.quota_left = 0

    @property
    def opening(self) -> bool:
        """The next iteration is a window's first."""
        return self.pos == 0

    def open(self, quota: int) -> None:
        self.started += 1
        self.quota_left = quota

    def draw(self, draw: float) -> bool:
        left_in_window = self.window - self.pos
        self.pos = (self.pos + 1) % self.window
        take = self.quota_left > 0 and (
            draw >= 1.0 - self.target / self.window
            or left_in_window <= self.quota_left)
        self.quota_left -= int(take)
        return take

    def state_dict(self) -> dict:
        return dict(window_target=self.target, window_pos=self.pos,
                    windows_started=self.started,
                    quota_left=self.quota_left)

    def load_state_dict(self, state: dict) -> None:
        self.target = state['window_target']
        self.pos = state['window_pos']
        self.started = state['windows_started']
        self.quota_left = state['quota_left']


class BudgetSchedule:
    """A fixed share of the run's iterations, warm-up included."""

    def __init__(self, budget: SAMBudget, window: int):
        self.budget = budget
        self.windows = WindowDraw(window)

    def start(self, max_iters: Optional[int], warmup_iters: int) -> int:
        """The run's length; returns the warm-up, cut to the budget."""
        if not max_iters:
            return warmup_iters
        return self.budget.start(max_iters, warmup_iters)

    def take(self, iteration: int, in_warmup: bool, draw: float,
             changes: Changes) -> bool:
        budget, windows = self.budget, self.windows
        budget.require_run_length()
        if budget.left <= 0:
            take = False
        elif in_warmup or budget.must_take(iteration):
            take = True
        else:
            if windows.opening:
                d_r, d_v = changes() if windows.started > 0 else (0.0, 0.0)
                quota = budget.window_quota(iteration, d_r, d_v)
                windows.open(quota)
                windows.target = float(quota)
            take = windows.draw(draw)
        budget.record(take)
        return take

    def state_dict(self) -> dict:
        return dict(windows=self.windows.state_dict(),
                    budget=self.budget.state_dict())

    def load_state_dict(self, state: dict) -> None:
        self.windows.load_state_dict(state['windows'])
        if state.get('budget') is not None:
            self.budget.load_state_dict(state['budget'])


class PaperSchedule:
    """The authors' rule: the window target follows the statistics."""

    def __init__(self, window: int, a1: float, a2: float, max_target: float):
        self.windows = WindowDraw(window)
        self.a1, self.a2, self.max_target = a1, a2, max_target

    def start(self, max_iters: Optional[int], warmup_iters: int) -> int:
        return warmup_iters  # no budget: the cost follows the statistics

    def take(self, iteration: int, in_warmup: bool, draw: float,
             changes: Changes) -> bool:
        if in_warmup:
            return True
        windows = self.windows
        if windows.opening:
            if windows.started > 0:
                self._update_target(*changes())
            windows.open(int(math.floor(windows.target)))
        return windows.draw(draw)

    def _update_target(self, d_r: float, d_v: float) -> None:
        windows = self.windows
        target = windows.target * (1.0 + self.a1 * d_r + self.a2 * d_v)
        if not math.isfinite(target):
            # Should a statistic be inf/NaN, keep the target (no NaN draws).
            warnings.warn(f'ARSAM: non-finite schedule statistics (dr={d_r}, '
                          f'dv={d_v}); the target stays at {windows.target}.')
            return
        windows.target = min(max(target, 1.0), self.max_target)

    def state_dict(self) -> dict:
        return dict(windows=self.windows.state_dict(), budget=None)

    def load_state_dict(self, state: dict) -> None:
        self.windows.load_state_dict(state['windows'])
