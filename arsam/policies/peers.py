"""Schedules and reuse rules of the peer fast-SAM methods (docs/algorithms.md,
"Peers"), the baselines ARSAM is compared against. Each is a policy
over the same engine and math; only *when* and *what is reused* differ.

* LookSAM: Liu et al., "Towards Efficient and Scalable Sharpness-Aware
  Minimization", CVPR 2022.
* AE-SAM: Jiang et al., "An Adaptive Policy to Employ Sharpness-Aware
  Minimization", ICLR 2023.
* RST / SS-SAM: Zhao et al., "Randomized Sharpness-Aware Training for
  Boosting Computational Efficiency in Deep Learning", 2022.
* Periodic SAM: SAM every k-th iteration, plain steps between (MosaicML
  Composer's SAM ``interval``); with RST at the same rate, the
  equal-budget control for any adaptive schedule.
"""
import math
from typing import Optional

import torch

from .._checks import check_number
from ..sam_math import TINY, clone_tensors, dot, foreach_scalar, global_norm
from .base import TwoPassPolicy

__all__ = ['LookSAMPolicy', 'AESAMPolicy', 'RandomSAMPolicy', 'PeriodicSAMPolicy']


def _progress(iteration: int, max_iters: Optional[int]) -> float:
    if not max_iters or max_iters <= 1:
        return 0.0
    return min(1.0, iteration / (max_iters - 1))


class LookSAMPolicy(TwoPassPolicy):
    """SAM every ``k`` iterations; the others add ``alpha * ||g|| * u``,
    ``u`` the unit part of ``g_s`` orthogonal to ``g``.

    Args:
        k (int): a SAM iteration every k iterations (paper: 5..10).
        alpha (float): weight of the reused direction (paper: 0.7).
    """

    def __init__(self, k: int = 5, alpha: float = 0.7):
        check_number('k', k, integer=True, low=1)
        check_number('alpha', alpha)
        self.k, self.alpha = k, alpha
        self.iteration = 0
        self.direction = None

    def take_two_passes(self):
        take = self.iteration % self.k == 0
        self.iteration += 1
        return take

    def keep_first_grads(self, grads, index):
        return clone_tensors(grads)

    def on_sam_step(self, first_grads, sam_grads, grad_scale, index,
                    first_norms, check):
        if index is not None:
            raise RuntimeError('LookSAM needs a gradient for every perturbed '
                               'parameter; exclude the unused ones.')
        if not check(None):
            return False
        first_norm = (global_norm(first_grads) if first_norms is None else
                      torch.linalg.vector_norm(first_norms))
        # g_v = g_s - (<g_s, g> / ||g||^2) g, kept as a unit vector so that
        # the loss scale of AMP cancels out.
        coef = dot(sam_grads, first_grads) / (
            first_norm**2).clamp_min(TINY)
        g_v = torch._foreach_sub(
            sam_grads, foreach_scalar(torch._foreach_mul, first_grads, coef))
        foreach_scalar(torch._foreach_div_, g_v,
                       global_norm(g_v).clamp_min(TINY))
        self.direction = g_v
        return True

    def on_one_pass_step(self, grads, grad_scale, index):
        if self.direction is None or index is not None:
            return
        scale = self.alpha * global_norm(grads)
        torch._foreach_add_(
            grads, foreach_scalar(torch._foreach_mul, self.direction, scale))

    def state_dict(self):
        return dict(iteration=self.iteration, direction=self.direction)

    def load_state_dict(self, state, device=None):
        self.iteration = state['iteration']
        direction = state['direction']
        if direction is not None and device is not None:
            direction = [t.to(device) for t in direction]
        self.direction = direction


class AESAMPolicy(TwoPassPolicy):
    """AE-SAM (Jiang et al., ICLR 2023, section 3): with ``s_t = ||g_t||^2``

    * ``mu_t = delta * mu_{t-1} + (1 - delta) * s_t``;
    * ``sigma_t^2 = delta * sigma_{t-1}^2 + (1 - delta) * (s_t - mu_t)^2``;
    * ``c_t = (t / T) * lambda1 + (1 - t / T) * lambda2``;
    * SAM when ``s_t >= mu_t + c_t * sigma_t``, otherwise an ERM step;

    in that order: the statistics take ``s_t`` before the comparison. The
    recursion starts from ``mu = sigma^2 = 0``. ``c_t`` goes from
    ``lambda2`` at the start to ``lambda1`` at the end, so with the paper's
    ``lambda1 < lambda2`` the threshold falls and SAM steps become more
    frequent late in training. No reuse on the ERM steps. Decides after the
    first backward, which every iteration pays anyway (one host sync per
    iteration, by design).

    Args:
        delta (float): forgetting rate of the EMAs (paper: 0.9).
        lambda1 (float): ``c_t`` at the end of training (paper: -1).
        lambda2 (float): ``c_t`` at the start of training (paper: 1).
    """

    def __init__(self, delta: float = 0.9, lambda1: float = -1.0,
                 lambda2: float = 1.0):
        check_number('delta', delta, low=0, high=1, open_low=True,
                     open_high=True)
        check_number('lambda1', lambda1)
        check_number('lambda2', lambda2)
        self.delta, self.lambda1, self.lambda2 = delta, lambda1, lambda2
        self.iteration = 0
        self.max_iters = None
        self.mean = 0.0
        self.var = 0.0

    def _threshold_coef(self) -> float:
        t, total = self.iteration, self.max_iters
        frac = min(1.0, t / total) if total else 0.0
        return frac * self.lambda1 + (1.0 - frac) * self.lambda2

    #: SAM or not is decided from this iteration's gradient norm: every
    #: step prepares a second pass, and its first pass is all-reduced.
    decides_after_first_pass = True

    def take_two_passes(self):
        return True

    def confirm_two_passes(self, grads, grad_scale):
        sq_norm = global_norm(grads)**2
        if grad_scale is not None:
            sq_norm = sq_norm / grad_scale**2
        sq_norm = float(sq_norm)
        c_t = self._threshold_coef()
        self.iteration += 1
        if not math.isfinite(sq_norm):
            # The engine skips (AMP) or reports (fp32) a non-finite pass;
            # the statistics keep their last finite values.
            return True
        self.mean = self.delta * self.mean + (1 - self.delta) * sq_norm
        self.var = self.delta * self.var + (1 - self.delta) * (
            sq_norm - self.mean)**2
        return sq_norm >= self.mean + c_t * math.sqrt(self.var)

    def state_dict(self):
        return dict(iteration=self.iteration, mean=self.mean, var=self.var)

    def load_state_dict(self, state, device=None):
        self.iteration = state['iteration']
        # Checkpoints from before the paper-faithful update held None.
        self.mean = state['mean'] or 0.0
        self.var = state['var']


class RandomSAMPolicy(TwoPassPolicy):
    """RST: each iteration is SAM with probability ``p_t``; no reuse.

    Args:
        p (float): probability at the start (constant if ``p_end`` unset).
        p_end (float, optional): probability at the end, linear in between.
        seed (int): seed of the policy's own generator (same on all ranks).
    """

    def __init__(self, p: float = 0.5, p_end: Optional[float] = None,
                 seed: int = 0):
        check_number('p', p, low=0, high=1)
        check_number('p_end', p_end, optional=True, low=0, high=1)
        check_number('seed', seed, integer=True)
        self.p, self.p_end = p, p_end
        self.generator = torch.Generator().manual_seed(seed)
        self.iteration = 0
        self.max_iters = None

    def take_two_passes(self):
        p_t = self.p
        if self.p_end is not None:
            p_t += (self.p_end - self.p) * _progress(self.iteration,
                                                     self.max_iters)
        self.iteration += 1
        return float(torch.rand((), generator=self.generator)) < p_t

    def state_dict(self):
        return dict(iteration=self.iteration,
                    generator=self.generator.get_state())

    def load_state_dict(self, state, device=None):
        self.iteration = state['iteration']
        self.generator.set_state(state['generator'])


class PeriodicSAMPolicy(TwoPassPolicy):
    """SAM on every ``k``-th iteration (the first included), plain
    one-pass steps between them; no reuse.

    A fractional ``k`` spreads the SAM iterations evenly at rate ``1/k``:
    iteration ``i`` (from 0) is one when ``floor(i / k)`` steps up, so
    ``k=1.6`` alternates gaps of 1 and 2. Of the first ``n`` iterations it
    takes ``floor((n - 1) / k) + 1``, so ``k = n / m`` takes exactly ``m``;
    an integer ``k`` is every k-th iteration.

    Args:
        k (int | float): a SAM iteration every k iterations (1: plain SAM).
    """

    def __init__(self, k: float = 2):
        check_number('k', k, low=1)
        self.k = k
        self.iteration = 0

    def take_two_passes(self):
        # floor((i - 1) / k) is -1 at i = 0: the first iteration is one.
        i, self.iteration = self.iteration, self.iteration + 1
        return math.floor(i / self.k) > math.floor((i - 1) / self.k)

    def state_dict(self):
        return dict(iteration=self.iteration)

    def load_state_dict(self, state, device=None):
        self.iteration = state['iteration']
