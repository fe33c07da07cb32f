"""ARSAM: which iterations take two passes, and what the others reuse.

Deng & Pang, "Adaptively Sampling-Reusing-Mixing Decomposed Gradients to
Speed Up Sharpness Aware Minimization", arXiv 2510.03763; the schedule
follows the authors' predecessor vSAM (arXiv 2403.08821). The formulas,
the edge cases defined here and the studies behind each default are in
``docs/algorithms.md`` and ``docs/benchmarks.md``.

* SAM iterations store ``PSF = g_s - g`` and record the statistics of
  ``psf_statistics.py``; one-pass iterations mix the stored PSF into
  ``g``, the ``k``-th of them with ``beta**k`` up to ``max_reuse``
  (``psf_reuse.py``).
* ``schedule='budget'`` (default): a fixed share ``budget`` of the run's
  iterations, warm-up included, takes two passes (``budget.py``); the
  statistics decide where, never how many. ``'paper'``: the authors' rule,
  ``target *= 1 + a1*dr + a2*dv`` once per window, whose cost follows its
  statistics. Each is an object of ``arsam_schedules.py``; this policy
  holds the warm-up, the random stream, the statistics and the reuse.
* Edge cases: the first window after the warm-up takes ``floor(target)``
  SAM iterations; the default warm-up is one window.
"""
from typing import Dict, List, Optional

import torch
from torch import Tensor

from .. import _log
from .._checks import ConfigError, check_number
from ..migrations import arsam_policy_state
from ..sam_math import psf_from_grads_, tensor_norms
from .arsam_schedules import BudgetSchedule, PaperSchedule
from .base import FiniteCheck, TwoPassPolicy
from .budget import RunLengthUnknownError, SAMBudget
from .psf_reuse import PSFReuse
from .psf_statistics import PSFStatistics

__all__ = ['ARSAMPolicy']

SCHEDULES = ('budget', 'paper')
DEFAULT_BUDGET = 0.2  # (1 + 0.2) / 2 = 0.6 of SAM's passes

class ARSAMPolicy(TwoPassPolicy):
    """Adaptive SAM-iteration sampling with PSF reuse (ARSAM).

    Args:
        window (int): K, iterations per window and history length.
        warmup_iters (int, optional): iterations that are all SAM.
        warmup_epochs (int, optional): epochs that are all SAM (needs the
            epoch length). At most one of the two may be set.
        beta (float): PSF mixing decay; reuse weights beta, beta^2, ...
            (the authors': 0.7; 0.99 decays little between two SAM
            iterations: docs/benchmarks.md gives the settings it serves
            and those it does not).
        max_reuse (int): one-pass iterations that mix the stored PSF (the
            authors': 6).
        a1 (float): gain on the relative change of ``||psf||/||g||``.
        a2 (float): gain on the relative change of the block variance of
            ``||psf||``.
        max_p (float): at most ``window * max_p`` two-pass iterations in a
            window.
        schedule (str): ``'budget'`` or ``'paper'``; ``schedule='paper',
            warmup_epochs=3, beta=0.7, max_reuse=6`` is the authors' preset.
        budget (float, optional): share of the run's iterations with two
            passes (``'budget'`` only). Defaults to 0.2, 0.6x SAM's passes.
        placement (str): how ``'budget'`` spreads the budget over the run:
            ``'adaptive'`` (the statistics) or ``'uniform'``.
        tail (float): ``'budget'`` only: the share of the budget taken as
            SAM on the run's last iterations (late-phase SAM, Zhou et al.
            2025); the rest is placed as ``placement`` says.
        psf_average (float): what one-pass iterations reuse: a running
            mean of the PSFs of the SAM iterations, each new PSF weighing
            ``psf_average`` (``stored += psf_average * (new - stored)``);
            1 reuses the last PSF alone (the paper). A mean repeats the
            PSF's systematic part, not one batch's noise (0.25: the
            default since 0.3, docs/benchmarks.md, "One default").
        blocks (int): chunks of the sorted ``||psf||`` history.
        stat_tensors (int): the statistics use the last this-many
            parameter tensors.
        seed (int): seed of the policy's own generator (same on all ranks).
    """

    def __init__(self,
                 window: int = 50,
                 warmup_iters: Optional[int] = None,
                 warmup_epochs: Optional[int] = None,
                 beta: float = 0.99,
                 max_reuse: int = 100,
                 a1: float = 0.13,
                 a2: float = 0.13,
                 max_p: float = 0.8,
                 schedule: str = 'budget',
                 budget: Optional[float] = None,
                 placement: str = 'adaptive',
                 tail: float = 0.0,
                 psf_average: float = 0.25,
                 blocks: int = 5,
                 stat_tensors: int = 10,
                 seed: int = 0):
        if warmup_iters is not None and warmup_epochs is not None:
            raise ConfigError(
                'warmup_epochs', 'ARSAM takes warmup_iters or warmup_epochs, '
                'not both', 'Remove one of them.')
        check_number('window', window, integer=True, low=1)
        check_number('warmup_iters', warmup_iters, integer=True,
                     optional=True, low=0)
        check_number('warmup_epochs', warmup_epochs, integer=True,
                     optional=True, low=0)
        check_number('beta', beta, low=0, high=1, open_low=True,
                     open_high=True)
        check_number('max_reuse', max_reuse, integer=True, low=0)
        check_number('a1', a1)
        check_number('a2', a2)
        check_number('max_p', max_p, low=0, high=1, open_low=True)
        if window * max_p < 1:
            raise ConfigError(
                'max_p', f'window * max_p = {window * max_p} allows no SAM '
                'iteration in a window', 'Raise max_p or window.')
        if schedule not in SCHEDULES:
            raise ConfigError(
                'schedule', f'unknown ARSAM schedule {schedule!r}',
                f'Use one of {SCHEDULES}.')
        if schedule != 'budget' and budget is not None:
            raise ConfigError(
                'budget', f"schedule={schedule!r} has no budget (its cost "
                'follows its statistics)', "Drop budget or use "
                "schedule='budget'.")
        check_number('budget', budget, optional=True, low=0, high=1,
                     open_low=True)
        check_number('tail', tail, low=0, high=1, open_high=True)
        if schedule != 'budget' and tail:
            raise ConfigError(
                'tail', f"schedule={schedule!r} has no budget to set apart",
                "Drop tail or use schedule='budget'.")
        check_number('psf_average', psf_average, low=0, high=1,
                     open_low=True)
        check_number('blocks', blocks, integer=True, low=1)
        check_number('stat_tensors', stat_tensors, integer=True, low=1)
        check_number('seed', seed, integer=True)
        self.window = window
        if warmup_iters is None and warmup_epochs is None:
            warmup_iters = window
        self.warmup_iters = warmup_iters
        self.warmup_epochs = warmup_epochs
        self.schedule = schedule
        self.needs_run_length = schedule == 'budget'
        if schedule == 'budget':
            self.schedule_rule = BudgetSchedule(SAMBudget(
                DEFAULT_BUDGET if budget is None else budget, window, max_p,
                placement, a1, a2, tail), window)
        else:
            self.schedule_rule = PaperSchedule(window, a1, a2, window * max_p)
        self.statistics = PSFStatistics(window, blocks, stat_tensors,
                                        full_histories_only=schedule != 'paper')
        self.reuse = PSFReuse(beta, max_reuse, psf_average)
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.iteration = 0
        self._changes = dict(arsam_dr=0.0, arsam_dv=0.0)

    @property
    def window_target(self) -> float:
        """SAM iterations this window aims at: the quota under 'budget',
        the authors' (fractional) rate under 'paper'."""
        return self.schedule_rule.windows.target

    @window_target.setter
    def window_target(self, value: float) -> None:
        self.schedule_rule.windows.target = value

    def bind(self, num_params: int) -> None:
        super().bind(num_params)
        stored = self.reuse.scaled_psf
        if stored is not None and len(stored) != num_params:
            raise RuntimeError(
                f'The resumed ARSAM state holds {len(stored)} PSF tensors '
                f'but {num_params} parameters are perturbed now: the model, '
                'paramwise_cfg or exclude changed since the checkpoint was '
                'written.')

    # --------------------------------------------------------- schedule
    def on_train_start(self, max_iters, epoch_length=None):
        super().on_train_start(max_iters, epoch_length)
        if self.warmup_epochs is not None and not epoch_length:
            raise RunLengthUnknownError(
                f'ARSAM: warmup_epochs={self.warmup_epochs} needs the '
                'iterations per epoch, which mmengine does not publish for '
                'an iteration-based loop (IterBasedTrainLoop reports '
                "max_epochs=1). Add custom_hooks=[dict(type='SAMRunInfoHook')]"
                ' (tools/train.py adds it), give the plain optimizer '
                'epoch_length, or set warmup_iters instead.')
        if self.warmup_epochs is not None:
            self.warmup_iters = self.warmup_epochs * epoch_length
            _log.info(
                f'ARSAM: warmup_epochs={self.warmup_epochs} is '
                f'{self.warmup_iters} iterations ({epoch_length} per epoch).')
        self.warmup_iters = self.schedule_rule.start(max_iters,
                                                     self.warmup_iters)

    def _in_warmup(self) -> bool:
        if self.warmup_iters is None:
            raise RunLengthUnknownError(
                'ARSAM: warmup_epochs is converted to iterations at the '
                'start of training (on_train_start), which has not run.')
        return self.iteration < self.warmup_iters

    def take_two_passes(self) -> bool:
        # One draw per iteration, warm-up included, so the stream of
        # decisions depends only on the seed and the iteration count.
        draw = float(torch.rand((), generator=self.generator))
        iteration, in_warmup = self.iteration, self._in_warmup()
        self.iteration += 1
        return self.schedule_rule.take(iteration, in_warmup, draw,
                                       self._schedule_changes)

    def _schedule_changes(self):
        """``(dr, dv)`` of the statistics (one host sync, once per
        window)."""
        d_r, d_v = self.statistics.changes()
        self._changes = dict(arsam_dr=d_r, arsam_dv=d_v)
        return d_r, d_v

    # ------------------------------------------------ sam / reuse steps
    def keep_first_grads(self, grads, index):
        return self.reuse.keep_first_grads(grads, index)

    def on_sam_step(self, first_grads, sam_grads, grad_scale, index,
                    first_norms, check: FiniteCheck) -> bool:
        if first_norms is None:
            first_norms = tensor_norms(first_grads)
        # first_grads are ours (keep_first_grads): the PSF is formed there.
        psf, psf_scale = psf_from_grads_(first_grads, sam_grads, grad_scale)
        # One per-tensor norm pass over the PSF: the statistics' tail, the
        # logged norm, and (||g - g_s|| finite with a finite g) the engine's
        # finiteness check of g_s.
        psf_norms = tensor_norms(psf)
        finite = False
        try:
            finite = check(torch.linalg.vector_norm(psf_norms))
        finally:
            if not finite:
                self.reuse.drop()
        if not finite:
            return False
        self.reuse.store(psf, psf_scale, index, self.num_params)
        self.statistics.record(psf_norms, first_norms, abs(psf_scale))
        return True

    def stored_psf(self) -> Optional[List[Optional[Tensor]]]:
        """The stored PSF ``g_s - g`` in unscaled units (new tensors)."""
        return self.reuse.stored_psf()

    def on_one_pass_step(self, grads, grad_scale, index):
        self.reuse.mix_into(grads, grad_scale, index)

    def log_scalars(self) -> Dict[str, object]:
        scalars = dict(self.statistics.last)
        scalars.update(self._changes)
        scalars.update(arsam_rate=self.window_target / self.window,
                       psf_coef=self.reuse.coef)
        return scalars

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return dict(
            iteration=self.iteration,
            **self.schedule_rule.state_dict(),
            changes=dict(self._changes),
            generator=self.generator.get_state(),
            reuse=self.reuse.state_dict(),
            statistics=self.statistics.state_dict())

    def load_state_dict(self, state: dict, device=None) -> None:
        state = arsam_policy_state(state)
        self.iteration = state['iteration']
        self.schedule_rule.load_state_dict(state)
        self.reuse.load_state_dict(state['reuse'], device)
        self.statistics.load_state_dict(state['statistics'], device)
        self._changes = dict(state.get('changes') or self._changes)
        self.generator.set_state(state['generator'])
