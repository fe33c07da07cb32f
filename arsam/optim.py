"""SAM, ASAM, ARSAM, LookSAM and late-phase SAM as ``torch.optim``
optimizers.

For any training loop: the optimizer wraps a base optimizer and drives
the same engine as the mmengine wrappers (``arsam/engine.py``). Two ways
to run a step, with the same result:

``step(closure)``: the closure runs the forward and backward and returns
the loss; it is called once, or twice when the step takes two passes::

    optimizer = ARSAM(model, base, rho=0.05, max_steps=epochs * len(loader))
    for inputs, targets in loader:
        def closure():
            loss = criterion(model(inputs), targets)
            loss.backward()
            return loss
        loss = optimizer.step(closure)
        optimizer.zero_grad()

The two-step API, for loops that run their own backward (a
``torch.amp.GradScaler``, Lightning's manual optimization, HF
Accelerate)::

    for inputs, targets in loader:
        with optimizer.first_pass():
            loss = criterion(model(inputs), targets)
            scaler.scale(loss).backward()
        if optimizer.takes_second_pass(scaler):   # at w + e
            with optimizer.second_pass():
                scaler.scale(criterion(model(inputs), targets)).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()

Under DDP the first pass of a two-pass step runs in ``model.no_sync()``
(local SAM, as in the paper) unless ``sync_first_pass=True``; the copy of
``g`` its PSF is formed from is averaged over ranks, so every rank takes
the same step. Gradient accumulation goes inside the closure, or inside
each ``with`` block. With a GradScaler the passes are measured in its
scaled units (the PSF keeps its scale), a non-finite pass stores nothing
and the scaler skips the step. Sources and formulas:
``docs/algorithms.md``.
"""
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from . import _log
from ._amp import grad_scale_of
from ._checks import (
    ConfigError,
    check_number,
    check_unknown_arguments,
    front_end,
)
from .engine import SharpnessAwareEngine, StepPlan
from .migrations import plain_optimizer_state
from .policies import (
    AlwaysSAMPolicy,
    ARSAMPolicy,
    LatePhaseSAMPolicy,
    LookSAMPolicy,
    build_policy,
)

__all__ = [
    'SharpnessAwareOptimizer', 'SAM', 'ASAM', 'ARSAM', 'LookSAM',
    'LatePhaseSAM'
]

#: The key of the sharpness-aware state beside the base optimizer's
#: ``state`` and ``param_groups`` (the mmengine wrappers write the same).
STATE_KEY = 'sam_state'


class SharpnessAwareOptimizer(torch.optim.Optimizer):
    """A base optimizer driven by a sharpness-aware policy.

    It shares the base optimizer's ``param_groups`` (each carries ``rho``,
    so LR schedulers and per-group radii work as usual) and ``state``;
    ``state_dict()`` holds the base optimizer's state and the engine's
    (the policy's schedule, stored PSF and random stream).

    Args:
        model (nn.Module): the model being trained (possibly wrapped in
            DDP): its parameter names serve ``exclude`` and ASAM, its
            BatchNorm layers keep their statistics in the second pass.
        base_optimizer (torch.optim.Optimizer): built over (some of) the
            model's parameters.
        policy (TwoPassPolicy, optional): defaults to SAM (every step).
        rho, adaptive, eta, eps, exclude: the perturbation
            (``SharpnessAwareEngine``).
        max_steps (int, optional): the run's length in ``step`` calls;
            ARSAM's budget is a share of it.
        epoch_length (int, optional): steps per epoch (``warmup_epochs``).
        sync_first_pass (bool): under DDP, all-reduce the first pass of a
            two-pass step too (global SAM).
        **policy_arguments: the arguments of the class's ``policy_cls``
            (ARSAM's ``budget``, LookSAM's ``k``, ...).
    """

    #: The policy a subclass builds from ``policy_arguments`` (None: SAM
    #: every step, or the ``policy`` given).
    policy_cls = None

    def __init__(self,
                 model: nn.Module,
                 base_optimizer: torch.optim.Optimizer,
                 policy=None,
                 *,
                 rho: float = 0.05,
                 adaptive: bool = False,
                 eta: float = 0.01,
                 eps: float = 1e-12,
                 exclude: Optional[Union[str, Sequence[str]]] = None,
                 max_steps: Optional[int] = None,
                 epoch_length: Optional[int] = None,
                 sync_first_pass: bool = False,
                 **policy_arguments):
        name = type(self).__name__
        if not isinstance(model, nn.Module):
            raise TypeError(
                f'{name}: model must be the nn.Module being trained (its '
                'parameter names serve exclude, its BatchNorm layers keep '
                'their statistics in the second pass), got '
                f'{type(model).__name__}. Pass the model itself, not '
                'model.parameters(); the base optimizer takes those.')
        if not isinstance(base_optimizer, torch.optim.Optimizer):
            raise TypeError(
                f'{name}: base_optimizer must be an optimizer instance, e.g. '
                'torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),'
                f' got {base_optimizer!r}.')
        if policy is not None and policy_arguments:
            raise TypeError(
                f'{name}: {sorted(policy_arguments)} configure the policy '
                f'{name} builds; pass them or a policy, not both.')
        with front_end(name):
            check_unknown_arguments(type(self), policy_arguments)
            if policy is None and self.policy_cls is not None:
                policy = build_policy(self.policy_cls, policy_arguments)
            check_number('max_steps', max_steps, integer=True, optional=True,
                         low=1)
            check_number('epoch_length', epoch_length, integer=True,
                         optional=True, low=1)
            if max_steps is None and getattr(policy, 'needs_run_length',
                                             False):
                raise ConfigError(
                    'max_steps', 'is required: the two-pass steps are a '
                    'share of the run',
                    'Pass the number of step() calls of the whole run, e.g. '
                    'max_steps=epochs * len(loader).')
            self.engine = SharpnessAwareEngine(
                base_optimizer, policy, rho=rho, adaptive=adaptive, eta=eta,
                eps=eps, exclude=exclude, name=name)
        self.base_optimizer = base_optimizer
        super().__init__(base_optimizer.param_groups, base_optimizer.defaults)
        self._share_base_state()
        self.model = model
        self._inner = getattr(model, 'module', model)  # DDP
        self.max_steps, self.epoch_length = max_steps, epoch_length
        self.sync_first_pass = sync_first_pass

    def _share_base_state(self) -> None:
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state
        self.defaults = self.base_optimizer.defaults

    @property
    def policy(self):
        return self.engine.policy

    @property
    def sam_rate(self) -> float:
        """The share of steps so far that took two passes: the run costs
        ``(1 + sam_rate) / 2`` of SAM's forward/backward passes."""
        return self.engine.sam_rate

    # ------------------------------------------------------ the two steps
    @contextmanager
    def first_pass(self) -> Iterator[StepPlan]:
        """Around the first forward and backward of a step (all its
        micro-batches under accumulation): the step's decision is taken
        here, and under DDP a step that takes two passes runs this pass
        without the gradient all-reduce (local SAM) unless
        ``sync_first_pass``. Yields the step's plan (``plan.two_pass``:
        whether a second pass may follow)."""
        engine = self.engine
        if self.param_groups is not self.base_optimizer.param_groups:
            # A state loaded into the base optimizer itself made new groups.
            self._share_base_state()
            engine.restore_rho()
        with front_end(type(self).__name__):  # exclude meets the model
            engine.bind(self._inner)
        if engine.total_iters == self.max_steps:
            _log.warning(
                f'{type(self).__name__}: step {engine.total_iters + 1} is '
                f'past max_steps={self.max_steps}; the schedule was planned '
                'for max_steps steps (raise it to train longer).')
        with engine.first_pass(
                self.model, inner=self._inner,
                run_length=lambda: (self.max_steps, self.epoch_length, 0),
                sync_first_pass=self.sync_first_pass) as plan:
            yield plan

    def takes_second_pass(self, grad_scaler=None) -> bool:
        """After the first backward: whether this step runs
        :meth:`second_pass`. ``grad_scaler``: the ``torch.amp.GradScaler``
        that scaled the backward, if any (a non-finite first pass then
        takes no second one, and the scaler skips the step)."""
        grad_scale = None if grad_scaler is None else grad_scale_of(
            grad_scaler)
        return self.engine.takes_second_pass(
            grad_scale, skip_non_finite=grad_scale is not None)

    def second_pass(self):
        """Context manager around the forward and backward at the
        perturbed weights ``w + e`` (BatchNorm statistics frozen); ``w``
        is restored on the way out and the policy records the PSF. Run it
        when :meth:`takes_second_pass` says True, then :meth:`step`."""
        return self.engine.second_pass()

    def step(self, closure: Optional[Callable[[], Tensor]] = None
             ) -> Optional[Tensor]:
        """One optimizer step. With a ``closure`` (runs the forward and
        backward at the current weights and returns the loss; called once
        or twice) it is the whole step and returns the first pass's loss.
        Without one it ends a step of the two-step API (or is called by
        ``GradScaler.step``)."""
        loss = None
        if closure is not None:
            loss = self._run_closure(closure)
        else:
            plan = self.engine.step
            if plan is None:
                raise RuntimeError(
                    f'{type(self).__name__}.step() without a closure ends '
                    'a step of the two-step API: run the forward and '
                    'backward inside `with optimizer.first_pass():` first, '
                    'then `if optimizer.takes_second_pass(scaler):` (a '
                    'torch.amp.GradScaler, or none) the second pass, or '
                    'pass step() a closure that runs them and returns the '
                    'loss.')
            if plan.two_pass and not plan.asked:
                raise RuntimeError(
                    f'{type(self).__name__}: this step takes two passes, '
                    'but takes_second_pass() was not asked: call `if '
                    'optimizer.takes_second_pass(): with '
                    'optimizer.second_pass(): ...` before step().')
            self.engine.one_pass_step()
        plan = self.engine.step
        self.base_optimizer.step()
        self.engine.count_iteration(int(plan.counts_two_pass))
        self.engine.close_step()
        return loss

    def _run_closure(self, closure) -> Tensor:
        with self.first_pass(), torch.enable_grad():
            loss = closure()
        if not isinstance(loss, Tensor):
            raise TypeError(
                f'{type(self).__name__}.step: the closure must return the '
                f'loss tensor (after loss.backward()), got {loss!r}.')

        def second_pass() -> Tensor:
            with torch.enable_grad():
                return closure()

        self.engine.update(loss.detach(), second_pass)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """torch's ``{'state', 'param_groups'}`` of the base optimizer and
        one key more, ``'sam_state'``: the engine's (the policy's schedule,
        stored PSF, random stream), as the mmengine wrappers write it."""
        state = self.base_optimizer.state_dict()
        state[STATE_KEY] = self.engine.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Load what :meth:`state_dict` of any SAM-family optimizer here
        returned (this release's or an earlier one's), or a plain
        ``torch.optim`` state dict (start sharpness-aware from an SGD/Adam
        run).

        The base optimizer's state (momenta, Adam moments, step counts) is
        loaded either way, and every param group keeps the ``rho`` it was
        given. The schedule continues from a state of the same method and
        starts afresh from any other (logged).
        """
        try:
            base, own = plain_optimizer_state(state_dict)
        except ValueError as error:
            raise ValueError(
                f'{type(self).__name__}.load_state_dict: {error}') from None
        self.base_optimizer.load_state_dict(base)
        self._share_base_state()  # the base optimizer made new groups
        self.engine.restore_rho()
        self.engine.load_state_dict(own)


class SAM(SharpnessAwareOptimizer):
    """SAM (Foret et al., ICLR 2021): two passes every step.

    Examples:
        >>> base = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        >>> optimizer = SAM(model, base, rho=0.05)
    """

    policy_cls = AlwaysSAMPolicy


class ASAM(SAM):
    """ASAM (Kwon et al., ICML 2021): SAM with the scale-invariant
    perturbation ``T = |w| + eta``; its radius is larger (0.5 to 2)."""

    def __init__(self, model, base_optimizer, rho: float = 0.5, **kwargs):
        if kwargs.get('adaptive') is False:
            raise ConfigError('adaptive', 'ASAM is adaptive',
                              'Use SAM for the plain perturbation.', 'ASAM')
        kwargs['adaptive'] = True
        super().__init__(model, base_optimizer, rho=rho, **kwargs)


class ARSAM(SharpnessAwareOptimizer):
    """ARSAM (Deng & Pang, arXiv 2510.03763): two passes on a share
    ``budget`` of the steps (0.2: 0.6x SAM's passes), the stored PSF mixed
    into the others. Needs ``max_steps`` for its budget.

    Takes every argument of :class:`SharpnessAwareOptimizer` and of
    :class:`~arsam.policies.ARSAMPolicy` (``budget``, ``beta``, ...).

    Examples:
        >>> optimizer = ARSAM(model, base, rho=0.05, max_steps=10_000)
    """

    policy_cls = ARSAMPolicy


class LookSAM(SharpnessAwareOptimizer):
    """LookSAM (Liu et al., CVPR 2022): SAM every ``k`` steps, the part of
    ``g_s`` orthogonal to ``g`` reused with weight ``alpha``.

    Examples:
        >>> optimizer = LookSAM(model, base, rho=0.05, k=5, alpha=0.25)
    """

    policy_cls = LookSAMPolicy


class LatePhaseSAM(SharpnessAwareOptimizer):
    """Late-phase SAM (Zhou et al., ICLR 2025): plain steps of the base
    optimizer, then SAM on the last ``share`` of the ``max_steps`` steps
    (0.2: 0.6x SAM's passes).

    Examples:
        >>> optimizer = LatePhaseSAM(model, base, rho=0.05, share=0.2,
        ...                          max_steps=10_000)
    """

    policy_cls = LatePhaseSAMPolicy
