"""mmengine glue over the sharpness-aware engine (``arsam/engine.py``).

``BaseModel.train_step`` (and ``MMDistributedDataParallel.train_step``) run
``data_preprocessor`` and the forward inside ``optim_wrapper.optim_context``
and then call ``optim_wrapper.update_params(loss)``. The mixin uses
exactly that contract (``docs/design.md``):

* ``optim_context`` enters the engine's first pass (the step's decision;
  under DDP a two-pass step's first pass runs without gradient all-reduce
  unless ``sync_first_pass=True``: local SAM, as in the paper) and, for a
  step that may take two passes, records the preprocessed batch with a
  temporary forward hook on ``data_preprocessor`` (re-running it would
  redraw random batch augmentations);
* ``update_params`` is mmengine's template (scale, backward, and on the
  last micro-batch: step, zero_grad); before the step the engine runs the
  second pass through the (wrapped) model at the perturbed weights, or the
  policy's one-pass edit, so ``step`` (clipping, the base optimizer, the
  AMP scaler) acts on the gradient the method wants.

The glue adds what only mmengine knows: the run's length (message hub),
the accumulation cycle (``accumulation.py``), logging (``sam_logging.py``)
and AMP (``amp.py``).
"""
from contextlib import contextmanager, nullcontext
from typing import Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from arsam import _dist
from arsam.policies import TwoPassPolicy, build_policy

from ._checks import refuse_update_without_context
from .accumulation import AccumulationCycle
from .batch_share import check_share, take_share, warn_if_reused
from .engine_glue import EngineGlue, unwrap
from .run_info import training_run_length
from .sam_logging import SAMScalars

__all__ = ['SharpnessAwareMixin', 'unwrap']


class SharpnessAwareMixin(EngineGlue):
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
        second_pass_share (float): the share of each batch, drawn at
            random, that the second pass at ``w + e`` runs on (ESAM/AUSAM's
            lever, ``batch_share.py``); the perturbation still comes from
            the whole batch. Defaults to 1.0 (the whole batch).
        policy (TwoPassPolicy, optional): the schedule; by default the
            class's ``policy_cls`` built from its arguments in ``kwargs``
            (SAM every iteration when there is none).
        **kwargs: the ``policy_cls`` arguments, then ``OptimWrapper``'s
            (``clip_grad``, ...).
    """

    #: The policy a concrete wrapper builds from its arguments.
    policy_cls = None

    def __init__(self,
                 optimizer,
                 rho: float = 0.05,
                 adaptive: bool = False,
                 eta: float = 0.01,
                 eps: float = 1e-12,
                 exclude: Optional[Union[str, Sequence[str]]] = None,
                 sync_first_pass: bool = False,
                 second_pass_share: float = 1.0,
                 policy: Optional[TwoPassPolicy] = None,
                 **kwargs):
        check_share(second_pass_share)
        if policy is None and self.policy_cls is not None:
            policy = build_policy(self.policy_cls, kwargs)
        self._init_engine(
            optimizer, kwargs, policy=policy, rho=rho,
            adaptive=adaptive, eta=eta, eps=eps, exclude=exclude,
            skip_non_finite=self._amp)
        super().__init__(optimizer=optimizer, **kwargs)
        self.adaptive = adaptive
        self.sync_first_pass = sync_first_pass
        self.second_pass_share = second_pass_share
        warn_if_reused(self.policy, second_pass_share, type(self).__name__)
        self.cycle = AccumulationCycle()
        self._in_step = False  # optim_context ran, update_params to come
        self._max_iters_given: Optional[int] = None
        self._first_iter = 0  # where the run (re)starts
        self._run_max_iters: Optional[int] = None
        self.scalars = SAMScalars(type(self).__name__)

    _amp = False  # the AMP twin skips non-finite passes
    def initialize_count_status(self, model: nn.Module, init_counts: int,
                                max_counts: int) -> None:
        super().initialize_count_status(model, init_counts, max_counts)
        self._max_iters_given = max_counts
        self._first_iter = init_counts

    def _run_length(self):
        """The run's length in optimizer steps (one per accumulation
        cycle), at the first step of a run, resume included, from what
        mmengine publishes (``run_info.py``)."""
        max_iters, epoch_length = training_run_length(self.message_hub,
                                                      self._max_iters_given)
        self._run_max_iters = max_iters
        counts = self._accumulative_counts
        steps = None if max_iters is None else -(-max_iters // counts)
        if epoch_length is not None:
            epoch_length = -(-epoch_length // counts)
        self.cycle.warn_if_resumed_inside(type(self).__name__,
                                          self._inner_count % counts)
        return steps, epoch_length, self._first_iter // counts

    @contextmanager
    def optim_context(self, model: nn.Module):
        self._bind(model)
        # The cycle's first micro-batch asks for a decision, for all of it
        # (DDP must know at once which micro-batches skip all-reduce); the
        # others, and a cycle resumed in its middle, keep it.
        decided = self.cycle.two_pass if self.cycle.is_open else None
        with self.engine.first_pass(
                model, inner=self._inner, run_length=self._run_length,
                sync_first_pass=self.sync_first_pass,
                decided=decided) as plan:
            if not self.cycle.is_open:
                self.cycle.open(plan.two_pass)
            self._in_step = True
            if not plan.two_pass:
                with super().optim_context(model):
                    yield
                return
            # The preprocessed batch, for the second pass at w + e
            # (re-running the preprocessor would redraw its random
            # augmentations).
            handle = self._inner.data_preprocessor.register_forward_hook(
                lambda module, inputs, output: self.cycle.record_batch(
                    output))
            try:
                with super().optim_context(model):
                    yield
            finally:
                handle.remove()

    def _forward_context(self):  # autocast in the AMP twin
        return nullcontext()

    def _grad_scale(self) -> Optional[Tensor]:  # the AMP loss scale
        return None

    def update_params(self,
                      loss: Tensor,
                      step_kwargs: Optional[dict] = None,
                      zero_kwargs: Optional[dict] = None) -> None:
        if not self._in_step:
            refuse_update_without_context(self)
        self._in_step = False
        loss = self.scale_loss(loss)
        self.backward(loss)
        self.cycle.add_loss(loss)
        if self.should_update():
            two_pass, sharpness = self.engine.update(
                self.cycle.loss, self._second_pass,
                grad_scale=self._grad_scale())
            self.engine.count_iteration(self.cycle.micro * int(two_pass))
            self.engine.close_step()
            self.cycle.end()
            self._log(two_pass, sharpness)
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))
        else:
            self.engine.count_iteration()
            self._log(False, None)
        if self._inner_count == self._run_max_iters:
            print_log(self.scalars.run_end_line(
                self.sam_iters, self.total_iters, self.second_pass_share),
                logger='current')

    def scale_loss(self, loss: Tensor) -> Tensor:
        loss = super().scale_loss(loss)
        if self._accumulative_counts > 1:
            # mmengine's divisor at this micro-batch (N, or the length of
            # the last, shorter cycle); the second pass divides by the same.
            self.cycle.divisor = round(
                1.0 / float(super().scale_loss(torch.ones(()))))
        return loss

    def _second_pass(self) -> Tensor:
        """The recorded micro-batches at the perturbed weights (under DDP
        only the last all-reduces). ``_run_forward`` and ``_inner_count``
        are mmengine privates, pinned by ``test_private_apis.py``."""
        batches = self.cycle.batches
        if not batches:
            raise RuntimeError(
                f'{type(self).__name__} did not see the preprocessed batch: '
                "the model's data_preprocessor must run inside "
                'optim_context(model), as BaseModel.train_step does.')
        no_sync = hasattr(self._model, 'no_sync') and _dist.world_size() > 1
        total = None
        for k, batch in enumerate(batches):
            batch = take_share(batch, self.second_pass_share,
                               type(self).__name__)
            last = k == len(batches) - 1
            with (nullcontext() if last or not no_sync else
                  self._model.no_sync()):
                with self._forward_context():
                    losses = self._model._run_forward(batch, mode='loss')
                sam_loss, _ = self._inner.parse_losses(losses)
                if self._accumulative_counts > 1:
                    sam_loss = sam_loss / self.cycle.divisor
                self.backward(sam_loss)
                self._inner_count -= 1
            sam_loss = sam_loss.detach()
            total = sam_loss if total is None else total + sam_loss
        return total

    def _log(self, two_pass: bool, sharpness: Optional[Tensor]) -> None:
        self.scalars.log(self.message_hub, self.policy,
                         self.sam_iters / self.total_iters,
                         self.optimizer.param_groups[0]['rho'], two_pass,
                         sharpness)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state['sam_state'] = dict(
            self.engine.state_dict(), log_cache=dict(self.scalars.cache),
            cycle_decision=self.cycle.state_dict())
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """A checkpoint of any wrapper: the base optimizer's state always;
        the schedule only from this method's (``engine.load_state_dict``),
        else it starts afresh at the resumed iteration."""
        state_dict = dict(state_dict)
        sam_state = state_dict.pop('sam_state', None)
        super().load_state_dict(state_dict)
        self.engine.restore_rho()
        if self.engine.load_state_dict(sam_state):
            self.scalars.cache = dict(sam_state['log_cache'])
            self.cycle.load_state_dict(sam_state.get('cycle_decision'))

    def __repr__(self) -> str:
        return (f'{super().__repr__()}\nrho (default): {self.rho}, adaptive: '
                f'{self.adaptive}, policy: {type(self.policy).__name__}, '
                f'second_pass_share: {self.second_pass_share}')
