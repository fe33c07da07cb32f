"""ARSAM's adaptive sampling, reuse and mixing of the PSF.

Deng & Pang, "Adaptively Sampling-Reusing-Mixing Decomposed Gradients to
Speed Up Sharpness Aware Minimization", arXiv 2510.03763; the schedule
follows the authors' predecessor vSAM (arXiv 2403.08821). The formulas,
the edge cases defined here and the reasons behind each schedule are in
``docs/algorithms.md`` (section "ARSAM").

* SAM iterations store ``PSF = g_s - g`` and record the statistics of
  ``psf_statistics.py``; one-pass iterations mix the stored PSF into
  ``g``, the ``k``-th of them with ``coef = beta**k`` up to ``max_reuse``:
  ``reuse='decay'`` (the paper's) mixes ``coef * PSF``; ``'scaled'``
  mixes ``coef * (||g|| / ||g_sam||) * PSF``, the PSF at the measured
  ``||PSF|| / ||g_sam||`` of the current gradient; ``'stale'`` stores
  ``g`` instead and takes the pass at ``w + rho g/||g||`` (the glue).
* ``schedule='budget'`` (default): a fixed share ``budget`` of the run's
  iterations, warm-up included, takes two passes (``budget.py``); the
  statistics decide where, never how many. ``'paper'``: the authors'
  ``rate *= 1 + a1*dr + a2*dv`` once per window. ``'relative'``
  (deprecated): ``rate *= exp(reference_iters / max_iters * (a1*dr +
  a2*dv))``, ``v`` from full histories only, a floor ``min_p``.
* Edge cases: the first window after the warm-up takes ``floor(rate)``
  SAM iterations; the default warm-up is one window.
"""
import math
import warnings
from typing import Dict, List, Optional

import torch
from mmengine.logging import print_log
from torch import Tensor

from .._checks import check_number, config_error
from ..perturbed_params import pick
from ..sam_math import (
    TINY,
    clone_tensors,
    global_norm,
    mix_psf_,
    psf_from_grads_,
    tensor_norms,
    to_device,
)
from .base import FiniteCheck, TwoPassPolicy
from .budget import RunLengthUnknownError, SAMBudget
from .psf_statistics import PSFStatistics

_RELATIVE_DEPRECATED = (
    "ARSAM: schedule='relative' is deprecated: its cost follows the run, and "
    "on val it kept 0.80 of SAM's gain where 'budget' kept 0.97 (docs/"
    "benchmarks.md). Use schedule='budget' (the default), or 'paper'.")

__all__ = ['ARSAMPolicy']

SCHEDULES = ('budget', 'relative', 'paper')
REUSE_RULES = ('decay', 'scaled', 'stale')
DEFAULT_BUDGET = 0.2  # (1 + 0.2) / 2 = 0.6 of SAM's passes


class ARSAMPolicy(TwoPassPolicy):
    """Adaptive SAM-iteration sampling with PSF reuse (ARSAM).

    Args:
        window (int): K, iterations per window and history length.
        warmup_iters (int, optional): iterations that are all SAM.
        warmup_epochs (int, optional): epochs that are all SAM (needs an
            epoch-based loop). At most one of the two may be set.
        beta (float): PSF mixing decay; reuse weights beta, beta^2, ...
            (the authors': 0.7; 0.99, nearly no decay between two SAM
            iterations, kept SAM's gain in every setting we tried, see
            docs/benchmarks.md).
        max_reuse (int): one-pass iterations that mix the stored PSF (the
            authors': 6).
        a1 (float): gain on the relative change of ``||psf||/||g||``.
        a2 (float): gain on the relative change of the block variance of
            ``||psf||``.
        max_p (float): the rate is clipped to ``[1, window * max_p]`` (under
            ``'budget'``: at most ``window * max_p`` two-pass iterations in
            a window).
        min_p (float): floor of the rate as a fraction of the window
            (``'relative'`` only; the rate never drops below 1 either).
        schedule (str): ``'budget'``, ``'paper'`` or (deprecated)
            ``'relative'``; ``schedule='paper', warmup_epochs=3, beta=0.7,
            max_reuse=6`` is the authors' preset.
        reference_iters (int): the run length the gains were set for
            (``'relative'`` only): 200 epochs of CIFAR at batch 128.
        budget (float, optional): share of the run's iterations with two
            passes (``'budget'`` only). Defaults to 0.2, 0.6x SAM's passes.
        placement (str): how ``'budget'`` spreads the budget over the run:
            ``'adaptive'`` (the statistics), ``'uniform'``, ``'front'`` or
            ``'late'`` (see ``policies/budget.py``).
        reuse (str): ``'decay'``, ``'scaled'`` or ``'stale'`` (module
            docstring).
        blocks (int): chunks of the sorted ``||psf||`` history.
        stat_layers (int): statistics use the last this-many tensors.
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
                 min_p: float = 0.0,
                 schedule: str = 'budget',
                 reference_iters: int = 78200,
                 budget: Optional[float] = None,
                 placement: str = 'adaptive',
                 reuse: str = 'decay',
                 blocks: int = 5,
                 stat_layers: int = 10,
                 seed: int = 0):
        if warmup_iters is not None and warmup_epochs is not None:
            raise config_error(
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
            raise config_error(
                'max_p', f'window * max_p = {window * max_p} allows no SAM '
                'iteration in a window', 'Raise max_p or window.')
        check_number('min_p', min_p, low=0, high=max_p)
        if schedule not in SCHEDULES:
            raise config_error(
                'schedule', f'unknown ARSAM schedule {schedule!r}',
                f'Use one of {SCHEDULES}.')
        if schedule == 'relative':
            warnings.warn(_RELATIVE_DEPRECATED, FutureWarning)
        if schedule != 'budget' and budget is not None:
            raise config_error(
                'budget', f"schedule={schedule!r} has no budget (its cost "
                'follows its statistics)', "Drop budget or use "
                "schedule='budget'.")
        check_number('budget', budget, optional=True, low=0, high=1,
                     open_low=True)
        if reuse not in REUSE_RULES:
            raise config_error('reuse', f'unknown ARSAM reuse rule {reuse!r}',
                               f'Use one of {REUSE_RULES}.')
        if schedule == 'paper' and min_p > 0:
            raise config_error(
                'min_p', "the 'paper' schedule has no rate floor",
                "Drop min_p or use schedule='relative'.")
        check_number('reference_iters', reference_iters, integer=True,
                     low=1)
        check_number('blocks', blocks, integer=True, low=1)
        check_number('stat_layers', stat_layers, integer=True, low=1)
        check_number('seed', seed, integer=True)
        self.window = window
        if warmup_iters is None and warmup_epochs is None:
            warmup_iters = window
        self.warmup_iters = warmup_iters
        self.warmup_epochs = warmup_epochs
        self.beta = beta
        self.max_reuse = max_reuse
        self.a1, self.a2 = a1, a2
        self.max_rate = window * max_p
        self.min_rate = max(1.0, window * min_p)
        self.schedule = schedule
        self.reuse = reuse
        self.budget = None
        if schedule == 'budget':
            self.budget = SAMBudget(
                DEFAULT_BUDGET if budget is None else budget, window, max_p,
                placement, a1, a2)
        self.reference_iters = reference_iters
        # Set by every on_train_start (resume too): not in the state dict.
        self.time_scale = 1.0
        self.statistics = PSFStatistics(window, blocks, stat_layers,
                                        full_histories_only=schedule != 'paper')
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.iteration = 0
        self.rate = self.min_rate
        self.window_pos = 0
        self.windows_started = 0
        self.quota_left = 0
        self.reuse_count = max_reuse  # nothing to reuse before a SAM step
        self.coef = 0.0
        # The stored PSF tensors hold PSF * psf_scale (psf_from_grads_).
        self.psf: Optional[List[Optional[Tensor]]] = None
        self.psf_scale = 1.0
        self._changes = dict(arsam_dr=0.0, arsam_dv=0.0)

    def bind(self, num_params: int) -> None:
        super().bind(num_params)
        if self.psf is not None and len(self.psf) != num_params:
            raise RuntimeError(
                f'The resumed ARSAM state holds {len(self.psf)} PSF tensors '
                f'but {num_params} parameters are perturbed now: the model, '
                'paramwise_cfg or optim_wrapper.exclude changed since the '
                'checkpoint was written.')

    # --------------------------------------------------------- schedule
    def on_train_start(self, max_iters, epoch_length=None):
        super().on_train_start(max_iters, epoch_length)
        if self.schedule == 'relative' and max_iters:
            self.time_scale = self.reference_iters / max_iters
        if self.warmup_epochs is not None and not epoch_length:
            raise RunLengthUnknownError(
                f'ARSAM: optim_wrapper.warmup_epochs={self.warmup_epochs} '
                'needs the iterations per epoch, which mmengine does not '
                'publish for an iteration-based loop (IterBasedTrainLoop '
                'reports max_epochs=1). Add custom_hooks=[dict(type='
                "'SAMRunInfoHook')] (tools/train.py adds it), or set "
                'optim_wrapper.warmup_iters instead.')
        if self.warmup_epochs is not None:
            self.warmup_iters = self.warmup_epochs * epoch_length
            print_log(
                f'ARSAM: warmup_epochs={self.warmup_epochs} is '
                f'{self.warmup_iters} iterations ({epoch_length} per epoch).',
                logger='current')
        if self.budget is not None and max_iters:
            self.warmup_iters = self.budget.start(max_iters, self.warmup_iters)

    def _in_warmup(self) -> bool:
        if self.warmup_iters is None:
            raise RunLengthUnknownError(
                'ARSAM: warmup_epochs is converted to iterations at the '
                'start of training (on_train_start), which has not run.')
        return self.iteration < self.warmup_iters

    def take_two_passes(self, epoch: int) -> bool:
        # One draw per iteration, warm-up included, so the stream of
        # decisions depends only on the seed and the iteration count.
        draw = float(torch.rand((), generator=self.generator))
        if self.budget is not None:
            return self._take_within_budget(epoch, draw)
        in_warmup = self._in_warmup()
        self.iteration += 1
        if in_warmup:
            return True
        if self.window_pos == 0:
            if self.windows_started > 0:
                self._update_rate()
            self.windows_started += 1
            self.quota_left = int(math.floor(self.rate))
        left_in_window = self.window - self.window_pos
        self.window_pos = (self.window_pos + 1) % self.window
        take = self.quota_left > 0 and (
            draw >= 1.0 - self.rate / self.window
            or left_in_window <= self.quota_left)
        if take:
            self.quota_left -= 1
        return take

    def _take_within_budget(self, epoch: int, draw: float) -> bool:
        budget = self.budget
        budget.require_run_length()
        iteration = self.iteration
        in_warmup = self._in_warmup()
        self.iteration += 1
        if budget.left <= 0:
            take = False
        elif in_warmup or budget.must_take(iteration):
            take = True
        else:
            if self.window_pos == 0:
                d_r, d_v = (self._schedule_changes()
                            if self.windows_started > 0 else (0.0, 0.0))
                self.windows_started += 1
                self.quota_left = budget.window_quota(iteration, d_r, d_v)
                self.rate = float(self.quota_left)
            left_in_window = self.window - self.window_pos
            self.window_pos = (self.window_pos + 1) % self.window
            take = self.quota_left > 0 and (
                draw >= 1.0 - self.rate / self.window
                or left_in_window <= self.quota_left)
            self.quota_left -= int(take)
        budget.taken += int(take)
        return take

    def _schedule_changes(self):
        """``(dr, dv)`` of the statistics (one host sync, once per
        window)."""
        d_r, d_v = self.statistics.changes()
        self._changes = dict(arsam_dr=d_r, arsam_dv=d_v)
        return d_r, d_v

    def _update_rate(self) -> None:
        d_r, d_v = self._schedule_changes()
        step = self.a1 * d_r + self.a2 * d_v
        if self.schedule == 'paper':
            rate = self.rate * (1.0 + step)
        else:
            rate = self.rate * math.exp(
                min(self.time_scale * step, math.log(self.max_rate)))
        if not math.isfinite(rate):
            # Should a statistic be inf/NaN, keep the rate (no NaN draws).
            warnings.warn(f'ARSAM: non-finite schedule statistics (dr={d_r}, '
                          f'dv={d_v}); the rate stays at {self.rate}.')
            return
        self.rate = min(max(rate, self.min_rate), self.max_rate)

    # ------------------------------------------------ sam / reuse steps
    def keep_first_grads(self, grads, index):
        # Into the stored PSF's own tensors when they match (the new PSF
        # replaces the old one in place), else a fresh copy.
        stored = pick(self.psf, index)
        if stored is None or any(t is None for t in stored):
            return clone_tensors(grads)
        torch._foreach_copy_(stored, grads)
        return stored

    def on_sam_step(self, first_grads, sam_grads, grad_scale, index,
                    first_norms, check: FiniteCheck) -> bool:
        if first_norms is None:
            first_norms = tensor_norms(first_grads)
        # first_grads are ours (keep_first_grads): the PSF is formed there.
        psf, psf_scale = psf_from_grads_(first_grads, sam_grads, grad_scale)
        # One per-tensor norm pass over the PSF: the statistics' tail, the
        # logged norm, and (||g - g_s|| finite with a finite g) the glue's
        # finiteness check of g_s.
        psf_norms = tensor_norms(psf)
        finite = False
        try:
            finite = check(torch.linalg.vector_norm(psf_norms))
        finally:
            if not finite:
                self._drop_psf()
        if not finite:
            return False
        if self.reuse == 'stale':  # keep (g - g_s) + g_s = g instead
            torch._foreach_add_(psf, sam_grads)
            psf_scale = -psf_scale
        if index is None:
            self.psf = list(psf)  # a foreach op may have returned a tuple
        else:
            if self.psf is None:
                self.psf = [None] * self.num_params
            kept = set(index)
            older = [t for i, t in enumerate(self.psf)
                     if i not in kept and t is not None]
            if older:
                # Tensors without a gradient now keep their PSF, brought
                # to this step's scale (AMP's loss scale moves).
                torch._foreach_mul_(older, psf_scale / self.psf_scale)
            for pos, tensor in zip(index, psf):
                self.psf[pos] = tensor
        self.psf_scale = psf_scale
        self.reuse_count = 0
        self.coef = 1.0
        self.statistics.record(psf_norms, first_norms, abs(psf_scale))
        return True

    def _drop_psf(self) -> None:
        # A pass was not finite; the store may hold g (keep_first_grads):
        # clear it and reuse nothing until the next SAM iteration.
        if self.psf is not None:
            torch._foreach_zero_([t for t in self.psf if t is not None])
        self.reuse_count = self.max_reuse
        self.coef = 0.0

    def stored_psf(self) -> Optional[List[Optional[Tensor]]]:
        """The stored PSF ``g_s - g`` (``g`` under ``reuse='stale'``) in
        unscaled units (new tensors); kept as ``PSF * psf_scale``."""
        if self.psf is None:
            return None
        return [None if t is None else t / self.psf_scale for t in self.psf]

    def one_pass_ascent(self):
        if self.reuse == 'stale' and self.reuse_count < self.max_reuse:
            return self.psf  # g of the last SAM step (None before one)
        return None

    def on_one_pass_step(self, grads, grad_scale, index):
        if self.psf is None or self.reuse_count >= self.max_reuse:
            self.coef = 0.0
            return
        self.reuse_count += 1
        if self.reuse == 'stale':
            self.coef = 1.0  # its pass ran at the whole stale ascent
            return
        # beta ** k, not a running product: float drift could add a reuse.
        self.coef = self.beta**self.reuse_count
        psf = pick(self.psf, index)
        if any(t is None for t in psf):
            keep = [i for i, t in enumerate(psf) if t is not None]
            grads, psf = pick(grads, keep), pick(psf, keep)
        if self.reuse == 'scaled':
            # ||g|| now (the gradients' units) over ||g_sam|| (unscaled):
            # the loss scale of g and of the mixed term cancel.
            factor = self.coef * global_norm(grads).clamp_min(TINY) / (
                self.statistics.grad_norm.clamp_min(TINY) * self.psf_scale)
        elif grad_scale is None and not isinstance(self.psf_scale, Tensor):
            mix_psf_(grads, psf, self.coef, grad_scale, self.psf_scale)
            return
        else:
            factor = self.coef * grad_scale / self.psf_scale
        self._mix_rescaled(grads, psf, factor)

    def _mix_rescaled(self, grads, psf, factor: Tensor) -> None:
        """``g += factor * stored`` without a scaled copy: the stored
        tensors are rescaled in place (all of them, so they keep one
        ``psf_scale``) and added as they are."""
        torch._foreach_mul_([t for t in self.psf if t is not None], factor)
        self.psf_scale = self.psf_scale * factor
        torch._foreach_add_(grads, psf)

    def log_scalars(self) -> Dict[str, object]:
        scalars = dict(self.statistics.last)
        scalars.update(self._changes)
        scalars.update(
            arsam_rate=self.rate / self.window, psf_coef=self.coef)
        return scalars

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return dict(
            iteration=self.iteration,
            rate=self.rate,
            window_pos=self.window_pos,
            windows_started=self.windows_started,
            quota_left=self.quota_left,
            reuse_count=self.reuse_count,
            coef=self.coef,
            psf=self.psf,
            psf_scale=self.psf_scale,
            budget=None if self.budget is None else self.budget.state_dict(),
            changes=dict(self._changes),
            generator=self.generator.get_state(),
            **self.statistics.state_dict())

    def load_state_dict(self, state: dict, device=None) -> None:
        for key in ('iteration', 'rate', 'window_pos', 'windows_started',
                    'quota_left', 'reuse_count', 'coef'):
            setattr(self, key, state[key])
        psf = state['psf']
        self.psf = None if psf is None else [to_device(t, device)
                                             for t in psf]
        # Checkpoints written before psf_scale stored the PSF itself.
        self.psf_scale = to_device(state.get('psf_scale', 1.0), device)
        if self.budget is not None and state.get('budget') is not None:
            self.budget.load_state_dict(state['budget'])
        self.statistics.load_state_dict(state, device)
        self._changes = dict(state.get('changes', self._changes))
        self.generator.set_state(state['generator'])
