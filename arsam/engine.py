"""One sharpness-aware step in plain torch, for every policy.

The engine owns what every SAM-family method does the same way, whatever
drives it (the plain optimizers of ``arsam/optim.py``, the mmengine
wrappers of ``arsam_mm``, any other loop):

* which parameters move (``perturbed_params.py``: ``exclude``, quantizer
  step sizes never, per-group ``rho`` in the optimizer's param groups,
  ASAM's scaling, SAQ layers);
* a two-pass step (SAM, Foret et al. 2021; ``docs/algorithms.md``):
  ``e`` from ``g``, ``w += e``, the second pass with BatchNorm statistics
  frozen, ``w`` restored bit for bit (also when the pass raises), both
  gradients handed to the policy, which keeps what later steps reuse;
* a one-pass step: the policy's edit of ``g`` (ARSAM mixes its PSF);
* finiteness: a non-finite pass stops the run with a message naming the
  iteration (``skip_non_finite=False``), or is skipped with nothing of it
  stored (AMP's loss scaler skips the step);
* the counters and the state dict.

MSAM's one-pass step (``momentum_sam.py``) and SAQ's recording of
``dL/dQ(w)`` (``saq.py``) are units of their own that drivers call with
:attr:`perturbed`; the engine only drops SAQ's recording after a step.

It never runs a forward itself: the driver passes ``second_pass``, a
callable that runs the forward/backward at the moved weights and returns
the loss. It imports torch and the policies, never mmengine.
"""
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from . import _dist, _log
from ._batchnorm import batchnorm_stats_frozen
from ._checks import check_perturbation_arguments
from ._finite import check_passes_finite, loss_and_grad_norm
from .perturbed_params import (
    PerturbedParams,
    put_rho_in_param_groups,
    restore_rho_in_param_groups,
)
from .policies import AlwaysSAMPolicy, TwoPassPolicy
from .sam_math import tensor_norms
from .saq import drop_quantized_grads

__all__ = ['SharpnessAwareEngine']


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
    def take_two_passes(self, epoch: int = 0) -> Optional[bool]:
        """The policy's decision, before the first forward (None: after
        the first backward, in :meth:`update`)."""
        return self.policy.take_two_passes(epoch)

    def update(self, loss: Tensor, second_pass: Callable[[], Tensor], *,
               two_pass: Optional[bool], grad_scale: Optional[Tensor] = None,
               local_first_pass: bool = False
               ) -> Tuple[bool, Optional[Tensor]]:
        """After the first backward, before the base optimizer steps: a
        second pass and the policy's record, or the policy's one-pass
        edit of ``g``.

        Args:
            loss: the first pass's loss (detached).
            second_pass: runs the forward/backward at the moved weights,
                accumulating into the (zeroed) ``.grad``; returns the loss.
            two_pass: :meth:`take_two_passes`' answer.
            grad_scale: the loss scale the gradients carry (AMP), or None.
            local_first_pass: the first pass was not all-reduced (local
                SAM under DDP); its copy that the policy keeps is.

        Returns:
            tuple: whether two passes ran, and the loss increase at
            ``w + e`` (None on one-pass or skipped steps).
        """
        if two_pass is None:
            _, grads, _ = self.perturbed.with_grads()
            two_pass = self.policy.decide_after_first_pass(grads, grad_scale)
        sharpness = None
        if two_pass:
            sharpness = self._sam_step(loss, second_pass, grad_scale,
                                       local_first_pass)
        else:
            _, grads, index = self.perturbed.with_grads()
            self.policy.on_one_pass_step(grads, grad_scale, index)
        drop_quantized_grads(self.perturbed)
        return two_pass, sharpness

    def count_iteration(self, two_pass_iterations: int = 0) -> None:
        """One more iteration (a micro-batch under accumulation), of which
        ``two_pass_iterations`` are newly known to have taken two."""
        self.total_iters += 1
        self.sam_iters += two_pass_iterations

    @property
    def sam_rate(self) -> float:
        """The share of iterations so far that took two passes."""
        return self.sam_iters / max(self.total_iters, 1)

    def _sam_step(self, loss, second_pass, grad_scale,
                  local_first_pass) -> Optional[Tensor]:
        params, grads, index = self.perturbed.with_grads()
        # One per-tensor norm pass over g serves the finiteness check, the
        # perturbation's ||g|| and the policy's statistics.
        norms = tensor_norms(grads)
        norm = torch.linalg.vector_norm(norms)
        first_norms = None
        if self.skip_non_finite:
            # An overflowed first pass has no direction to ascend along:
            # no second pass; the loss scaler skips the step.
            if not _dist.all_ranks_true(torch.isfinite(norm)):
                if local_first_pass:
                    _dist.all_reduce_mean_(grads)  # every rank skips
                return None
        else:  # checked with the second pass's, in one host sync
            first_norms = loss_and_grad_norm(loss, None, norm)
        first_grads = self.policy.keep_first_grads(grads, index)
        if first_grads is not None and local_first_pass:
            # PSF = g_s - g must be the same on every rank, or the
            # one-pass iterations would move the ranks apart.
            _dist.all_reduce_mean_(first_grads)
        latent, perturbation = self.perturbed.perturbation(
            self.optimizer, params, grads, index, eps=self.eps,
            adaptive=self.adaptive, eta=self.eta, norm=norm)
        self.perturbed.move(latent, perturbation)
        del perturbation
        with torch.no_grad():
            torch._foreach_zero_([p.grad for p in self.perturbed.params
                                  if p.grad is not None])
        try:
            with batchnorm_stats_frozen(self._batchnorms):
                sam_loss = second_pass().detach()
        finally:
            self.perturbed.restore()
        sam_grads = [p.grad for p in params]

        def check(sam_norm: Optional[Tensor]) -> bool:
            second = loss_and_grad_norm(sam_loss, sam_grads, sam_norm)
            if self.skip_non_finite:
                # Nothing of this step reaches the policy; the scaler
                # skips it and backs off.
                return _dist.all_ranks_true(torch.isfinite(second).all())
            # total_iters counts this iteration only after it; +1 is the
            # 1-based iteration of a training log.
            check_passes_finite(self.name, self.total_iters + 1, first_norms,
                                second)
            return True

        # A local first pass was all-reduced into first_grads since: its
        # norms are not theirs.
        finite = self.policy.on_sam_step(
            first_grads, sam_grads, grad_scale, index,
            None if local_first_pass else norms, check)
        return (sam_loss - loss).detach() if finite else None

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return dict(policy=self.policy.state_dict(),
                    policy_type=type(self.policy).__name__,
                    sam_iters=self.sam_iters, total_iters=self.total_iters,
                    start_step=self.start_step)

    def load_state_dict(self, state: Optional[dict]) -> bool:
        """Continue from ``state`` (what :meth:`state_dict` returned), or
        start afresh where it is None (a plain optimizer's checkpoint) or
        was written under another policy (SAM's into ARSAM, say): then
        nothing of it is taken and the policy starts at the resumed step
        (:meth:`start_run`). Returns whether the state was taken."""
        written_by = None if state is None else state.get('policy_type')
        ours = type(self.policy).__name__
        if state is not None and written_by in (None, ours):
            device = self.optimizer.param_groups[0]['params'][0].device
            try:
                self.policy.load_state_dict(state['policy'], device)
            except KeyError:
                # A state written before policy_type was saved, by another
                # policy: its keys are not ours.
                if written_by is not None:
                    raise
            else:
                self.sam_iters = state['sam_iters']
                self.total_iters = state['total_iters']
                self.start_step = state.get('start_step', 0)
                self._continued = True
                return True
        source = ('another optimizer' if state is None else
                  written_by or 'another SAM-family policy')
        _log.warning(
            f'{self.name}: the checkpoint holds no {ours} state (written by '
            f'{source}); the base optimizer state is loaded and the '
            'schedule starts afresh at the resumed step.')
        return False
