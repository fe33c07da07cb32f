"""mmengine glue: the two-pass training step behind every SAM-family wrapper.

``BaseModel.train_step`` (and ``MMDistributedDataParallel.train_step``) run
``data_preprocessor`` and the forward inside ``optim_wrapper.optim_context``
and then call ``optim_wrapper.update_params(loss)``. The mixin here uses
exactly that contract (``docs/design.md``):

* ``optim_context`` asks the policy whether this step takes two passes,
  and if so records the preprocessed batch with a temporary forward hook on
  ``data_preprocessor`` (re-running it would redraw random batch
  augmentations) and, under DDP, runs the first pass without gradient
  all-reduce unless ``sync_first_pass=True`` (local SAM, as in the paper).
* ``update_params`` is mmengine's template (scale, backward, and on the
  last micro-batch: step, zero_grad); before the step a two-pass step
  perturbs the weights, runs the second forward/backward through the
  (wrapped) model with BatchNorm statistics frozen, restores the weights
  bit for bit and hands both gradients to the policy, so ``step`` (clipping,
  the base optimizer, the AMP scaler) acts on the perturbed-pass gradient.
  A one-pass step may run its one pass at a perturbation the policy keeps
  from its last SAM step (``one_pass_ascent``); ``w`` is back before the step.

Which steps take two passes, and what one-pass steps do, is the policy's
business (``policies/``); which parameters move and by how much is
``perturbed_params.py``'s; the arithmetic is ``sam_math.py``'s; the
accumulation cycle is ``accumulation.py``'s.
"""
import logging
from contextlib import contextmanager, nullcontext
from typing import List, Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from . import _dist
from ._batchnorm import batchnorm_stats_frozen
from ._checks import (
    check_number,
    check_unknown_arguments,
    refuse_amp_arguments,
    refuse_unsupported_model,
    refuse_update_without_context,
)
from ._finite import check_passes_finite, loss_and_grad_norm
from .accumulation import AccumulationCycle
from .perturbed_params import PerturbedParams, put_rho_in_param_groups
from .policies import AlwaysSAMPolicy, TwoPassPolicy
from .run_info import training_run_length
from .sam_logging import SAMScalars
from .sam_math import tensor_norms

__all__ = ['SharpnessAwareMixin', 'unwrap']


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


class SharpnessAwareMixin:
    """Two-pass training step shared by every SAM-family wrapper.

    Args:
        optimizer: the base optimizer (built by mmengine from the config).
        rho (float): perturbation radius. Defaults to 0.05.
        adaptive (bool): ASAM's scale-invariant perturbation. Defaults to
            False.
        eta (float): ASAM's offset in ``T = |w| + eta``. Defaults to 0.01.
        eps (float): added to the gradient norm. Defaults to 1e-12.
        exclude (str | list[str], optional): regexes over parameter names
            (as in ``model.named_parameters()``) never perturbed.
        sync_first_pass (bool): under DDP, all-reduce the first-pass
            gradient too (global instead of local SAM). Defaults to False.
        policy (TwoPassPolicy): set by the concrete wrappers.
        **kwargs: ``OptimWrapper`` arguments (``clip_grad``, ...).
    """

    def __init__(self,
                 optimizer,
                 rho: float = 0.05,
                 adaptive: bool = False,
                 eta: float = 0.01,
                 eps: float = 1e-12,
                 exclude: Optional[Union[str, Sequence[str]]] = None,
                 sync_first_pass: bool = False,
                 policy: Optional[TwoPassPolicy] = None,
                 **kwargs):
        refuse_amp_arguments(self, kwargs)
        check_unknown_arguments(type(self), kwargs)
        check_number('rho', rho, low=0, open_low=True)
        check_number('eta', eta, low=0)
        check_number('eps', eps, low=0)
        self.selection = PerturbedParams(exclude)
        put_rho_in_param_groups(optimizer, rho)
        super().__init__(optimizer=optimizer, **kwargs)
        self.rho = rho
        self.adaptive = adaptive
        self.eta = eta
        self.eps = eps
        self.sync_first_pass = sync_first_pass
        self.policy = policy if policy is not None else AlwaysSAMPolicy()
        self.sam_iters = 0
        self.total_iters = 0
        self.cycle = AccumulationCycle()
        self._model: Optional[nn.Module] = None
        self._in_step = False  # optim_context ran, update_params to come
        self._local_first_pass = False
        self._max_iters_given: Optional[int] = None  # initialize_count_status
        self._started = False
        self._run_max_iters: Optional[int] = None
        self.scalars = SAMScalars(type(self).__name__)

    # ------------------------------------------------------- model binding
    def initialize_count_status(self, model: nn.Module, init_counts: int,
                                max_counts: int) -> None:
        refuse_unsupported_model(self, model)
        super().initialize_count_status(model, init_counts, max_counts)
        self._max_iters_given = max_counts
        # Refuse an exclude that leaves nothing to perturb before any
        # iteration runs.
        self.selection.select(unwrap(model), self.optimizer)

    def _bind(self, model: nn.Module) -> None:
        if model is self._model:
            return
        refuse_unsupported_model(self, model)
        inner = unwrap(model)
        self.selection.select(inner, self.optimizer)
        self._model, self._inner = model, inner
        self._batchnorms = [
            m for m in inner.modules() if isinstance(m, _BatchNorm)
        ]
        self.policy.bind(len(self.selection.perturbed))

    def _start_run(self) -> None:
        """Tell the policy the run's length, in optimizer steps (one per
        accumulation cycle), at the first step of a run, resume included:
        from the train loop mmengine's RuntimeInfoHook publishes under
        Runner and FlexibleRunner alike (``run_info.py``)."""
        self._started = True
        max_iters, epoch_length = training_run_length(self.message_hub,
                                                      self._max_iters_given)
        self._run_max_iters = max_iters
        counts = self._accumulative_counts
        steps = None if max_iters is None else -(-max_iters // counts)
        if epoch_length is not None:
            epoch_length = -(-epoch_length // counts)
        self.policy.on_train_start(steps, epoch_length)
        self.cycle.warn_if_resumed_inside(type(self).__name__,
                                          self._inner_count % counts)

    # ----------------------------------------------------------- forward
    @contextmanager
    def optim_context(self, model: nn.Module):
        self._bind(model)
        if not self._started:
            self._start_run()
        if not self.cycle.is_open:
            # The cycle's first micro-batch: one decision for all of it, so
            # that DDP knows at once which micro-batches skip all-reduce.
            epoch = self.message_hub.get_info('epoch', 0) or 0
            self.cycle.open(self.policy.take_two_passes(epoch))
        self._in_step = True
        if self.cycle.two_pass is False:
            directions = (None if self.selection.moved else
                          self.policy.one_pass_ascent())  # a stale ascent
            if directions is not None:
                self.selection.move_along(self.optimizer, directions,
                                          eps=self.eps, adaptive=self.adaptive,
                                          eta=self.eta)
            with self.selection.restored_on_error(), \
                    super().optim_context(model):
                yield
            return
        # Undecided (None) steps may turn into SAM ones: capture the batch,
        # but all-reduce the first pass as a one-pass step needs.
        self._local_first_pass = bool(
            self.cycle.two_pass and not self.sync_first_pass
            and hasattr(model, 'no_sync') and _dist.world_size() > 1)
        handle = self._inner.data_preprocessor.register_forward_hook(
            lambda module, inputs, output: self.cycle.record_batch(output))
        self.selection.set_on_saq_layers('record_quantized_weight_grad', True)
        try:
            no_sync = model.no_sync() if self._local_first_pass else (
                nullcontext())
            with no_sync, super().optim_context(model):
                yield
        finally:
            handle.remove()
            self.selection.set_on_saq_layers('record_quantized_weight_grad',
                                             False)

    def _forward_context(self):
        """Autocast for the second forward (the AMP twin overrides it)."""
        return nullcontext()

    def _grad_scale(self) -> Optional[Tensor]:
        """The loss scale gradients carry (the AMP twin overrides it)."""
        return None

    def _first_pass_finite(self, norm: Tensor) -> bool:
        """AMP skips an overflowed first pass (``norm``: ``||g||``); in fp32
        it is caught with the second pass (:meth:`_passes_finite`), in one
        host sync."""
        return True

    def _first_pass_norms(self, loss: Tensor,
                          norm: Tensor) -> Optional[Tensor]:
        """``loss`` and ``||g||`` of the first pass, kept on the device
        until :meth:`_passes_finite` reads them with the second pass's."""
        return loss_and_grad_norm(loss, None, norm)

    def _passes_finite(self, first_norms: Optional[Tensor], sam_loss: Tensor,
                       sam_grads: List[Tensor],
                       sam_norm: Optional[Tensor] = None) -> bool:
        """fp32: :func:`check_passes_finite` raises on a non-finite pass."""
        # total_iters counts this iteration only after the step (and is
        # restored on resume), so +1 is mmengine's 1-based Iter(train).
        check_passes_finite(
            type(self).__name__, self.total_iters + 1, first_norms,
            loss_and_grad_norm(sam_loss, sam_grads, sam_norm))
        return True

    # ------------------------------------------------------------ update
    def update_params(self,
                      loss: Tensor,
                      step_kwargs: Optional[dict] = None,
                      zero_kwargs: Optional[dict] = None) -> None:
        self._check_in_step()
        loss = self.scale_loss(loss)
        self.backward(loss)
        self.cycle.add_loss(loss)
        if self.should_update():
            self.selection.restore()  # a stale ascent's w (one-pass steps)
            self._sharpness_aware_update()
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))
        else:
            self.total_iters += 1
            self._log(False, None)
        if self.total_iters == self._run_max_iters:
            print_log(self.scalars.run_end_line(self.sam_iters,
                                                self.total_iters),
                      logger='current')

    def scale_loss(self, loss: Tensor) -> Tensor:
        loss = super().scale_loss(loss)
        if self._accumulative_counts > 1:
            # mmengine's divisor at this micro-batch (N, or the length of
            # the last, shorter cycle); the second pass divides by the same.
            self.cycle.divisor = round(
                1.0 / float(super().scale_loss(torch.ones(()))))
        return loss

    def _check_in_step(self) -> None:
        if not self._in_step:
            refuse_update_without_context(self)
        self._in_step = False

    def _sharpness_aware_update(self) -> None:
        """The end of a cycle, before the base optimizer steps: a second
        pass and the policy's record, or the policy's one-pass edit."""
        cycle = self.cycle
        two_pass = cycle.two_pass
        if two_pass is None:
            _, grads, _ = self.selection.with_grads()
            two_pass = self.policy.decide_after_first_pass(
                grads, self._grad_scale())
        sharpness = None
        if two_pass:
            sharpness = self._sam_pass(cycle.loss)
        else:
            _, grads, index = self.selection.with_grads()
            self.policy.on_one_pass_step(grads, self._grad_scale(), index)
        self.total_iters += 1
        self.sam_iters += cycle.micro * int(bool(two_pass))
        cycle.end()
        self.selection.set_on_saq_layers('quantized_weight_grad', None)
        self._log(two_pass, sharpness)

    def _second_pass(self) -> Tensor:
        """Forward/backward of the cycle's recorded micro-batches at the
        perturbed weights; their gradients accumulate as the first pass's
        did, and under DDP only the last one all-reduces. Returns the
        cycle's loss there, divided as mmengine divides the first pass's.
        ``_run_forward`` and ``_inner_count`` are mmengine privates (pinned
        by ``tests/test_mmengine_contract.py``): the second forward must go
        through the wrapped model without a new preprocessing, and its
        backward must not count as a micro-batch."""
        batches = self.cycle.batches
        no_sync = hasattr(self._model, 'no_sync') and _dist.world_size() > 1
        total = None
        for k, batch in enumerate(batches):
            last = k == len(batches) - 1
            sync = nullcontext() if last or not no_sync else (
                self._model.no_sync())
            with sync:
                with batchnorm_stats_frozen(self._batchnorms), \
                        self._forward_context():
                    losses = self._model._run_forward(batch, mode='loss')
                sam_loss, _ = self._inner.parse_losses(losses)
                if self._accumulative_counts > 1:
                    sam_loss = sam_loss / self.cycle.divisor
                self.backward(sam_loss)
                self._inner_count -= 1
            sam_loss = sam_loss.detach()
            total = sam_loss if total is None else total + sam_loss
        return total

    def _sam_pass(self, loss: Tensor) -> Optional[Tensor]:
        if not self.cycle.batches:
            raise RuntimeError(
                f'{type(self).__name__} did not see the preprocessed batch: '
                "the model's data_preprocessor must run inside "
                'optim_context(model), as BaseModel.train_step does.')
        params, grads, index = self.selection.with_grads()
        # One per-tensor norm pass over g serves the finiteness check, the
        # perturbation's ||g|| and the policy's statistics.
        norms = tensor_norms(grads)
        norm = torch.linalg.vector_norm(norms)
        if not self._first_pass_finite(norm):
            if self._local_first_pass:
                _dist.all_reduce_mean_(grads)  # every rank skips the step
            return None
        first_grads = self.policy.keep_first_grads(grads, index)
        if first_grads is not None and self._local_first_pass:
            # PSF = g_s - g must be the same on every rank, or the
            # one-pass iterations would move the ranks apart.
            _dist.all_reduce_mean_(first_grads)
        first_norms = self._first_pass_norms(loss, norm)
        latent, perturbation = self.selection.perturbation(
            self.optimizer, params, grads, index, eps=self.eps,
            adaptive=self.adaptive, eta=self.eta, norm=norm)
        self.selection.move(latent, perturbation)
        del perturbation
        with torch.no_grad():
            torch._foreach_zero_([p.grad for p in self.selection.params
                                  if p.grad is not None])
        try:
            sam_loss = self._second_pass()
        finally:
            self.selection.restore()
        sam_grads = [p.grad for p in params]

        def check(sam_norm: Optional[Tensor]) -> bool:
            return self._passes_finite(first_norms, sam_loss, sam_grads,
                                       sam_norm)

        # A local first pass was all-reduced into first_grads since: its
        # norms are not theirs.
        finite = self.policy.on_sam_step(
            first_grads, sam_grads, self._grad_scale(), index,
            None if self._local_first_pass else norms, check)
        return (sam_loss - loss).detach() if finite else None

    def _log(self, two_pass: bool, sharpness: Optional[Tensor]) -> None:
        self.scalars.log(self.message_hub, self.policy,
                         self.sam_iters / self.total_iters,
                         self.optimizer.param_groups[0]['rho'], two_pass,
                         sharpness)

    # ------------------------------------------------------------- state
    def state_dict(self) -> dict:
        state = super().state_dict()
        state['sam_state'] = dict(
            policy=self.policy.state_dict(),
            sam_iters=self.sam_iters,
            total_iters=self.total_iters,
            log_cache=dict(self.scalars.cache),
            cycle_decision=self.cycle.state_dict())
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        sam_state = state_dict.pop('sam_state', None)
        super().load_state_dict(state_dict)
        if sam_state is None:
            print_log(
                f'{type(self).__name__}: the checkpoint has no SAM state '
                '(written by another optimizer wrapper); the schedule '
                'starts afresh.',
                logger='current',
                level=logging.WARNING)
            return
        device = self.optimizer.param_groups[0]['params'][0].device
        self.policy.load_state_dict(sam_state['policy'], device)
        self.sam_iters = sam_state['sam_iters']
        self.total_iters = sam_state['total_iters']
        self.scalars.cache = dict(sam_state['log_cache'])
        self.cycle.load_state_dict(sam_state.get('cycle_decision'))

    def __repr__(self) -> str:
        return (f'{super().__repr__()}\nrho (default): {self.rho}, adaptive: '
                f'{self.adaptive}, policy: {type(self.policy).__name__}')
