"""One sharpness-aware step in plain torch, for every policy.

The engine owns what every SAM-family method does the same way, whatever
drives it (the plain optimizers of ``arsam/optim.py``, their two-step API,
the mmengine wrappers of ``arsam_mm``, any other loop):

* which parameters move (``perturbed_params.py``: ``exclude``, quantizer
  step sizes never, per-group ``rho`` in the optimizer's param groups,
  ASAM's scaling, SAQ layers);
* the first pass (:meth:`SharpnessAwareEngine.first_pass`): the policy's
  decision, a local first pass under DDP, SAQ's recording;
* a two-pass step (SAM, Foret et al. 2021; ``docs/algorithms.md``):
  ``e`` from ``g``, ``w += e``, the second pass with BatchNorm statistics
  frozen, ``w`` restored bit for bit (also when the pass raises), both
  gradients handed to the policy, which keeps what later steps reuse;
* a one-pass step: the policy's edit of ``g`` (ARSAM mixes its PSF);
* finiteness: a non-finite pass stops the run with a message naming the
  iteration, or is skipped with nothing of it stored (a loss scaler skips
  the step);
* the counters and the state dict.

Every front end runs a step in this order::

    with engine.first_pass(model, ...):          # the policy's decision
        ...                                      # forward, backward
    if engine.takes_second_pass(grad_scale):     # after the first backward
        with engine.second_pass():               # at w + e
            ...                                  # forward, backward
    else:
        engine.one_pass_step(grad_scale)         # the policy's edit of g
    ...                                          # the base optimizer steps
    engine.count_iteration(...); engine.close_step()

(:meth:`~SharpnessAwareEngine.update` is the middle part for a driver
that holds the second pass as a callable.) MSAM's one-pass step
(``momentum_sam.py``) is a unit of its own that drivers call with
:attr:`~SharpnessAwareEngine.perturbed`. The engine imports torch and the
policies, never mmengine.
"""
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import (
    Callable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from . import _dist, _log
from ._batchnorm import batchnorm_stats_frozen
from ._checks import check_perturbation_arguments
from ._finite import check_passes_finite, loss_and_grad_norm
from .migrations import engine_state_policy_type
from .perturbed_params import (
    PerturbedParams,
    put_rho_in_param_groups,
    restore_rho_in_param_groups,
)
from .policies import AlwaysSAMPolicy, TwoPassPolicy
from .sam_math import tensor_norms
from .saq import drop_quantized_grads, record_quantized_grads

__all__ = ['SharpnessAwareEngine', 'StepPlan', 'RunLength']

#: ``(max_steps, epoch_length, first_step)`` (:meth:`start_run`).
RunLength = Tuple[Optional[int], Optional[int], int]


@dataclass
class _SecondPass:
    """What :meth:`SharpnessAwareEngine.takes_second_pass` measured for
    the second pass; ``loss``: set it to the second pass's loss."""
    params: List[Tensor]
    grads: List[Tensor]
    index: Optional[List[int]]
    norms: Tensor
    norm: Tensor
    first_check: Optional[Tensor]
    grad_scale: Optional[Tensor]
    skip: bool
    first_loss: Optional[Tensor]
    loss: Optional[Tensor] = None
    done: bool = False


@dataclass
class StepPlan:
    """One optimizer step in flight.

    Attributes:
        two_pass (bool): the step may take a second pass (its batch is
            kept, SAQ layers record); after :meth:`takes_second_pass`,
            whether it does.
        local (bool): its first pass is not all-reduced (local SAM).
        counts_two_pass (bool): it counts as a two-pass iteration (the
            second pass ran, or a loss scaler skipped the step).
        sharpness (Tensor, optional): the loss increase at ``w + e``.
    """
    two_pass: bool
    local: bool
    asked: bool = False
    second: Optional[_SecondPass] = None
    skipped: bool = False
    edited: bool = False
    counts_two_pass: bool = False
    sharpness: Optional[Tensor] = None


class SharpnessAwareEngine:
    """The sharpness-aware step over ``optimizer``'s parameters.

    Args:
        optimizer (torch.optim.Optimizer): the base optimizer; ``rho`` is
            put in its param groups (a group may set its own).
        policy (TwoPassPolicy, optional): which steps take two passes and
            what the others reuse. Defaults to SAM (every step).
        rho (float): perturbation radius. Defaults to 0.05.
        adaptive (bool): ASAM's scale-invariant perturbation.
        eta (float): ASAM's offset in ``T = |w| + eta``.
        eps (float): added to the norm that divides.
        exclude (str | list[str], optional): regexes over parameter names
            never perturbed.
        skip_non_finite (bool): skip a non-finite pass (AMP) instead of
            raising ``FloatingPointError``.
        name (str): how errors name the optimizer.
    """

    def __init__(self,
                 optimizer: torch.optim.Optimizer,
                 policy: Optional[TwoPassPolicy] = None,
                 *,
                 rho: float = 0.05,
                 adaptive: bool = False,
                 eta: float = 0.01,
                 eps: float = 1e-12,
                 exclude: Optional[Union[str, Sequence[str]]] = None,
                 skip_non_finite: bool = False,
                 name: str = 'SAM'):
        check_perturbation_arguments(dict(rho=rho, eta=eta, eps=eps))
        self.perturbed = PerturbedParams(exclude)
        self._group_rhos = put_rho_in_param_groups(optimizer, rho)
        self.optimizer = optimizer
        self.policy = policy if policy is not None else AlwaysSAMPolicy()
        self.rho, self.adaptive, self.eta, self.eps = rho, adaptive, eta, eps
        self.skip_non_finite = skip_non_finite
        self.name = name
        self.sam_iters = 0  # iterations that took two passes
        self.total_iters = 0
        #: The run's step at which this optimizer took over (a switch from
        #: a plain optimizer's checkpoint); the policy's run is the rest.
        self.start_step = 0
        self._continued = False  # a state of this policy was loaded
        self._run_started = False
        #: The step in flight (:meth:`first_pass` to :meth:`close_step`).
        self.step: Optional[StepPlan] = None
        self._model: Optional[nn.Module] = None
        self._batchnorms: List[_BatchNorm] = []

    # ------------------------------------------------------------ set-up
    def bind(self, model: nn.Module) -> None:
        """Select the perturbed parameters of ``model`` (unwrapped: its
        parameter names are what ``exclude`` matches). Refuses an
        ``exclude`` that leaves nothing to perturb."""
        if model is self._model:
            return
        self.perturbed.select(model, self.optimizer)
        self._model = model
        self._batchnorms = [
            m for m in model.modules() if isinstance(m, _BatchNorm)
        ]
        self.policy.bind(len(self.perturbed.perturbed))

    def start_run(self, max_steps: Optional[int],
                  epoch_length: Optional[int] = None,
                  first_step: int = 0) -> None:
        """The run's length in optimizer steps (every start, resume
        included): ARSAM's budget is a share of it.

        ``first_step``: the step the run resumes at. An engine that starts
        there with nothing of its own loaded (the checkpoint was written by
        a plain optimizer or another policy) takes over the rest of the
        run: its policy's run is the ``max_steps - first_step`` steps left,
        so its cost is known as for a whole run.
        """
        if not self._continued and first_step:
            self.start_step = first_step
            _log.info(
                f'{self.name} takes over at step {first_step}: its schedule '
                f'covers the {max(max_steps - first_step, 0)} steps left.'
                if max_steps else
                f'{self.name} takes over at step {first_step}.')
        self._continued = True
        self._run_started = True
        if max_steps is not None:
            max_steps = max(max_steps - self.start_step, 0)
        self.policy.on_train_start(max_steps, epoch_length)

    def restore_rho(self) -> None:
        """Every param group carries its ``rho`` again after the base
        optimizer loaded a state (``Optimizer.load_state_dict`` makes new
        groups from the saved ones, which a plain optimizer saved without
        ``rho``); the groups' other keys and the base state are the
        loaded ones."""
        restore_rho_in_param_groups(self.optimizer, self._group_rhos)

    # ------------------------------------------------------- one step
    @contextmanager
    def first_pass(self, model: nn.Module, *,
                   inner: Optional[nn.Module] = None,
                   run_length: Optional[Callable[[], RunLength]] = None,
                   sync_first_pass: bool = False,
                   decided: Optional[bool] = None) -> Iterator[StepPlan]:
        """Around the first forward and backward of an optimizer step (or
        of each of its micro-batches): the one entry of every front end.

        At a step's first call (``decided`` None) it binds ``inner`` (the
        unwrapped model; ``model`` by default), starts the run at its first
        step (``run_length()`` returns ``(max_steps, epoch_length,
        first_step)``, see :meth:`start_run`), closes a step that never
        reached the base optimizer (a loss scaler skipped it), and asks the
        policy whether this step may take two passes. A later micro-batch
        of the step (accumulation), or a step resumed in its middle, passes
        the decision it keeps as ``decided``.

        A step that may take two passes runs its first pass without the
        gradient all-reduce under DDP (local SAM, as in the paper: the
        copy of ``g`` its policy keeps is averaged over ranks instead)
        unless ``sync_first_pass`` or the policy decides after the first
        pass; SAQ layers record ``dL/dQ(w)`` for it.

        Yields:
            StepPlan: the step's decision (``two_pass``) and ``local``.
        """
        inner = model if inner is None else inner
        self.bind(inner)
        if not self._run_started:
            self.start_run(*(run_length() if run_length is not None else
                             (None, None, 0)))
        if decided is None:
            if self.step is not None:  # its base-optimizer step was skipped
                self.count_iteration(int(self.step.counts_two_pass))
                self.close_step()
            two_pass = self.policy.take_two_passes()
        else:
            two_pass = decided
        if self.step is None or decided is None:
            local = bool(two_pass and not sync_first_pass
                         and not self.policy.decides_after_first_pass
                         and hasattr(model, 'no_sync')
                         and _dist.world_size() > 1)
            self.step = StepPlan(two_pass=bool(two_pass), local=local)
        plan = self.step
        record_quantized_grads(self.perturbed, plan.two_pass)
        try:
            with model.no_sync() if plan.local else nullcontext():
                yield plan
        finally:
            record_quantized_grads(self.perturbed, False)

    def takes_second_pass(self, grad_scale: Optional[Tensor] = None, *,
                          loss: Optional[Tensor] = None,
                          skip_non_finite: Optional[bool] = None) -> bool:
        """After the first backward: whether :meth:`second_pass` comes.

        A step decided for two passes takes them unless its policy decides
        otherwise now (AE-SAM, from ``g``) or, when non-finite passes are
        skipped (a loss scaler: ``skip_non_finite``, the engine's setting
        by default), ``g`` is not finite: then nothing runs and the scaler
        skips the step. ``grad_scale``: the loss scale the gradients carry
        (None in fp32); ``loss``: the first pass's loss, checked with the
        second pass in fp32 (one host sync).
        """
        plan = self._open_step('takes_second_pass')
        if plan.asked:
            return plan.second is not None
        plan.asked = True
        if not plan.two_pass:
            return False
        params, grads, index = self.perturbed.with_grads()
        if self.policy.decides_after_first_pass and (
                not self.policy.confirm_two_passes(grads, grad_scale)):
            plan.two_pass = False
            return False
        skip = (self.skip_non_finite
                if skip_non_finite is None else skip_non_finite)
        # One per-tensor norm pass over g serves the finiteness check, the
        # perturbation's ||g|| and the policy's statistics.
        norms = tensor_norms(grads)
        norm = torch.linalg.vector_norm(norms)
        first_check = None
        if skip:
            # An overflowed first pass has no direction to ascend along:
            # no second pass; the loss scaler skips the step.
            if not _dist.all_ranks_true(torch.isfinite(norm)):
                if plan.local:
                    _dist.all_reduce_mean_(grads)  # every rank skips
                plan.skipped = plan.counts_two_pass = True
                return False
        else:  # checked with the second pass's, in one host sync
            first_check = loss_and_grad_norm(loss, None, norm)
        plan.second = _SecondPass(params, grads, index, norms, norm,
                                  first_check, grad_scale, skip, loss)
        return True

    @contextmanager
    def second_pass(self) -> Iterator['_SecondPass']:
        """Around the forward and backward at ``w + e`` (after
        :meth:`takes_second_pass` said True): ``e`` from ``g``, ``w += e``
        with BatchNorm statistics frozen, ``w`` restored bit for bit on
        the way out (also when the pass raises), then both gradients to
        the policy. Set the yielded object's ``loss`` to the pass's loss
        to have it checked and the sharpness logged."""
        plan = self._open_step('second_pass')
        pending = plan.second
        if pending is None or pending.done:
            raise RuntimeError(
                f'{self.name}: second_pass() comes once per step, after '
                'takes_second_pass() returned True.')
        pending.done = True
        first_grads = self.policy.keep_first_grads(pending.grads,
                                                   pending.index)
        if first_grads is not None and plan.local:
            # PSF = g_s - g must be the same on every rank, or the
            # one-pass iterations would move the ranks apart.
            _dist.all_reduce_mean_(first_grads)
        latent, perturbation = self.perturbed.perturbation(
            self.optimizer, pending.params, pending.grads, pending.index,
            eps=self.eps, adaptive=self.adaptive, eta=self.eta,
            norm=pending.norm)
        self.perturbed.move(latent, perturbation)
        del perturbation
        with torch.no_grad():
            torch._foreach_zero_([p.grad for p in self.perturbed.params
                                  if p.grad is not None])
        try:
            with batchnorm_stats_frozen(self._batchnorms):
                yield pending
        finally:
            self.perturbed.restore()
        plan.counts_two_pass = True
        self._record_sam_step(plan, pending, first_grads)

    def _record_sam_step(self, plan: 'StepPlan', pending: '_SecondPass',
                         first_grads) -> None:
        sam_loss = None if pending.loss is None else pending.loss.detach()
        sam_grads = [p.grad for p in pending.params]

        def check(sam_norm: Optional[Tensor]) -> bool:
            second = loss_and_grad_norm(sam_loss, sam_grads, sam_norm)
            if pending.skip:
                # Nothing of this step reaches the policy; the scaler
                # skips it and backs off.
                return _dist.all_ranks_true(torch.isfinite(second).all())
            # total_iters counts this iteration only after it; +1 is the
            # 1-based iteration of a training log.
            check_passes_finite(self.name, self.total_iters + 1,
                                pending.first_check, second)
            return True

        # A local first pass was all-reduced into first_grads since: its
        # norms are not theirs.
        finite = self.policy.on_sam_step(
            first_grads, sam_grads, pending.grad_scale, pending.index,
            None if plan.local else pending.norms, check)
        if finite and sam_loss is not None and pending.first_loss is not None:
            plan.sharpness = (sam_loss - pending.first_loss.detach()).detach()

    def one_pass_step(self, grad_scale: Optional[Tensor] = None) -> None:
        """The policy's edit of ``g`` on a step without a second pass
        (ARSAM mixes its PSF); nothing on a skipped or two-pass step."""
        plan = self._open_step('one_pass_step')
        if plan.edited or plan.skipped or plan.second is not None:
            return
        plan.edited = True
        _, grads, index = self.perturbed.with_grads()
        self.policy.on_one_pass_step(grads, grad_scale, index)

    def update(self, loss: Tensor, second_pass: Callable[[], Tensor],
               grad_scale: Optional[Tensor] = None
               ) -> Tuple[bool, Optional[Tensor]]:
        """After the first backward, before the base optimizer steps, for
        a driver that holds the second pass as a callable (a closure, the
        recorded batches): the second pass and the policy's record, or the
        policy's one-pass edit of ``g``.

        Returns:
            tuple: whether the step counts as two-pass, and the loss
            increase at ``w + e`` (None on one-pass or skipped steps).
        """
        if self.takes_second_pass(grad_scale, loss=loss):
            with self.second_pass() as moved:
                moved.loss = second_pass()
        else:
            self.one_pass_step(grad_scale)
        plan = self.step
        return plan.counts_two_pass, plan.sharpness

    def close_step(self) -> None:
        """The step is over (the base optimizer stepped, or skipped)."""
        self.step = None
        drop_quantized_grads(self.perturbed)

    def _open_step(self, what: str) -> 'StepPlan':
        if self.step is None:
            raise RuntimeError(
                f'{self.name}: {what}() belongs to a step begun with '
                'first_pass() (the first forward and backward run inside '
                'it).')
        return self.step

    def count_iteration(self, two_pass_iterations: int = 0) -> None:
        """One more iteration (a micro-batch under accumulation), of which
        ``two_pass_iterations`` are newly known to have taken two."""
        self.total_iters += 1
        self.sam_iters += two_pass_iterations

    @property
    def sam_rate(self) -> float:
        """The share of iterations so far that took two passes."""
        return self.sam_iters / max(self.total_iters, 1)

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return dict(policy=self.policy.state_dict(),
                    policy_type=type(self.policy).__name__,
                    sam_iters=self.sam_iters, total_iters=self.total_iters,
                    start_step=self.start_step)

    def load_state_dict(self, state: Optional[dict]) -> bool:
        """Continue from ``state`` (what :meth:`state_dict` returned, of
        this release or an earlier one: ``migrations.py``), or start afresh
        where it is None (a plain optimizer's checkpoint) or was written
        under another policy (SAM's into ARSAM, say): then nothing of it
        is taken and the policy starts at the resumed step
        (:meth:`start_run`). Returns whether the state was taken."""
        written_by = engine_state_policy_type(state)
        ours = type(self.policy).__name__
        if written_by == ours:
            device = self.optimizer.param_groups[0]['params'][0].device
            self.policy.load_state_dict(state['policy'], device)
            self.sam_iters = state['sam_iters']
            self.total_iters = state['total_iters']
            self.start_step = state.get('start_step', 0)
            self._continued = True
            return True
        source = 'another optimizer' if state is None else written_by
        _log.warning(
            f'{self.name}: the checkpoint holds no {ours} state (written by '
            f'{source}); the base optimizer state is loaded and the '
            'schedule starts afresh at the resumed step.')
        return False
