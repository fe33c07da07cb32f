"""mmengine glue: SAM-family optimizer wrappers for an unmodified train_step.

``BaseModel.train_step`` (and ``MMDistributedDataParallel.train_step``) run
``data_preprocessor`` and the forward inside ``optim_wrapper.optim_context``
and then call ``optim_wrapper.update_params(loss)``. The wrappers here use
exactly that contract (``DESIGN.md``):

* ``optim_context`` asks the policy whether this iteration takes two
  passes, and if so records the preprocessed batch with a temporary forward
  hook on ``data_preprocessor`` (re-running it would redraw random batch
  augmentations) and, under DDP, runs the first pass without gradient
  all-reduce unless ``sync_first_pass=True`` (local SAM, as in the paper).
* ``update_params`` does the first backward, perturbs the weights, runs the
  second forward/backward through the (wrapped) model with BatchNorm
  running statistics frozen, restores the weights bit for bit, hands both
  gradients to the policy, and lets the usual ``step`` (gradient clipping,
  base optimizer, AMP scaler) act on the perturbed-pass gradient.

Which iterations take two passes, and what one-pass iterations do, is the
policy's business (``arsam_mm/optim/policies``); the arithmetic lives in
``sam_math``.
"""
import inspect
import logging
import re
import sys
from contextlib import contextmanager, nullcontext
from typing import List, Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from . import _dist
from ._checks import check_number, config_error
from .policies import AlwaysSAMPolicy, ARSAMPolicy, TwoPassPolicy
from .sam_math import clone_tensors, global_norm, sam_perturbation, tensor_norms

__all__ = [
    'SAMOptimWrapper', 'ARSAMOptimWrapper', 'AmpSAMOptimWrapper',
    'AmpARSAMOptimWrapper', 'SharpnessAwareMixin', 'AmpSharpnessAwareMixin',
    'AmpOnAnyDevice', 'policy_arguments'
]


# ``_decision`` before optim_context ran (``None`` means: decide later).
_NO_CONTEXT = object()
# ``_cycle_decision`` between accumulation cycles: the next micro-batch
# opens a cycle and asks the policy.
_NO_CYCLE = object()


def _pick(items: Optional[list], index: List[int]) -> Optional[list]:
    return None if items is None else [items[i] for i in index]


def _calling_runner_epoch_length() -> Optional[int]:
    """Batches per epoch of the mmengine Runner whose ``train()`` is calling
    ``initialize_count_status`` (it passes neither itself nor its data), or
    None outside a Runner. Lets ``warmup_epochs`` mean the same under an
    iteration-based loop, where the runtime epoch never advances."""
    from mmengine.runner import Runner
    frame = sys._getframe(1)
    for _ in range(4):  # Runner.train -> (subclass overrides) -> here
        frame = frame.f_back
        if frame is None:
            return None
        runner = frame.f_locals.get('self')
        if isinstance(runner, Runner):
            try:
                return len(runner.train_dataloader)
            except TypeError:  # a dataloader without a length
                return None
    return None


def _compile_patterns(exclude) -> List['re.Pattern']:
    if exclude is None:
        return []
    patterns = [exclude] if isinstance(exclude, str) else exclude
    if not isinstance(patterns, (list, tuple)) or not all(
            isinstance(p, str) for p in patterns):
        raise config_error(
            'exclude', f'must be a regex or a list of regexes, got '
            f'{exclude!r}', "E.g. exclude=['bn', r'\\.bias$'].")
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise config_error(
                'exclude', f'{pattern!r} is not a valid regex ({error})',
                'Escape special characters such as [ ( . with a '
                'backslash.') from None
    return compiled


def _loss_and_grad_norm(loss: Tensor, grads: List[Tensor],
                        norm: Optional[Tensor] = None) -> Tensor:
    """``[loss, ||g||]`` on the device: finite only if every element is.
    The 2-norm is 10x cheaper than max-abs on CPU; it overflows only for
    gradients near 1e19, a divergence all the same. ``norm``: ``||g||``
    if the caller has it."""
    if norm is None:
        norm = global_norm(grads)
    return torch.stack([loss.detach().float(), norm.float()])


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
        name = type(self).__name__
        check_number('rho', rho, low=0, open_low=True)
        check_number('eta', eta, low=0)
        check_number('eps', eps, low=0)
        amp_keys = [k for k in ('loss_scale', 'dtype') if k in kwargs]
        if amp_keys and not isinstance(self, AmpOptimWrapper):
            raise config_error(
                amp_keys[0], f'{name} is not a mixed-precision wrapper, so '
                f'it takes no {" or ".join(amp_keys)} (an AMP config such '
                'as a `-amp-` upstream one sets it)',
                f"Use type='Amp{name}' (or train with --amp), or remove "
                f'optim_wrapper.{amp_keys[0]}.')
        exclude = _compile_patterns(exclude)
        # rho lives in the param groups, as lr does: paramwise_cfg
        # custom_keys (dict(rho=...)) set it per group, mmengine's
        # parameter schedulers (param_name='rho') drive it, checkpoints
        # keep it. ``rho`` is the value of groups that set none, also of
        # groups added later and of mmengine's base_param_settings, which
        # OptimWrapper.__init__ copies from optimizer.defaults.
        optimizer.defaults.setdefault('rho', rho)
        for i, group in enumerate(optimizer.param_groups):
            group.setdefault('rho', rho)
            check_number(f'paramwise_cfg (param group {i}) rho', group['rho'],
                         low=0)
        super().__init__(optimizer=optimizer, **kwargs)
        self.rho = rho
        self._rho_key: Optional[list] = None
        self.adaptive = adaptive
        self.eta = eta
        self.eps = eps
        self.exclude = exclude
        self.sync_first_pass = sync_first_pass
        self.policy = policy if policy is not None else AlwaysSAMPolicy()
        self.sam_iters = 0
        self.total_iters = 0
        self._model: Optional[nn.Module] = None
        self._saq_layers: List[nn.Module] = []
        self._decision = _NO_CONTEXT
        self._local_first_pass = False
        # Gradient accumulation (accumulative_counts = N): one cycle of N
        # micro-batches is one SAM-family step. The policy decides at the
        # cycle's first micro-batch; the preprocessed micro-batches of a
        # two-pass cycle are kept for the second pass (N = 1: one batch).
        self._cycle_decision = _NO_CYCLE
        self._cycle_batches: list = []
        self._cycle_loss: Optional[Tensor] = None
        self._cycle_micro = 0
        self._cycle_factor = 1
        self._log_cache: dict = {}

    # ------------------------------------------------------- model binding
    def initialize_count_status(self, model: nn.Module, init_counts: int,
                                max_counts: int) -> None:
        try:
            from torch.distributed.fsdp import FullyShardedDataParallel
        except ImportError:  # pragma: no cover
            FullyShardedDataParallel = ()
        if isinstance(model, FullyShardedDataParallel):
            raise config_error(
                'type', f'{type(self).__name__} does not support FSDP '
                '(sharded gradients need an all-reduced norm)',
                'Use model_wrapper_cfg=dict(type='
                "'MMDistributedDataParallel') or a plain OptimWrapper.")
        super().initialize_count_status(model, init_counts, max_counts)
        # The first point where the wrapper sees the model: refuse an
        # exclude that leaves nothing to perturb before any iteration runs.
        inner = model.module if is_model_wrapper(model) else model
        self._split_params(inner)
        # Policies count optimizer steps: one per accumulation cycle.
        epoch_length = _calling_runner_epoch_length()
        steps = -(-max_counts // self._accumulative_counts)
        if epoch_length is not None:
            epoch_length = -(-epoch_length // self._accumulative_counts)
        self.policy.on_train_start(steps, epoch_length)
        if init_counts % self._accumulative_counts and (
                self._cycle_decision is not _NO_CYCLE):
            print_log(
                f'{type(self).__name__}: resumed in the middle of an '
                'accumulation cycle. Its remaining micro-batches keep the '
                'decision taken at its start; the micro-batches before the '
                'checkpoint are lost (mmengine\'s rule), so its second pass '
                'runs over those after it only.',
                logger='current',
                level=logging.WARNING)

    def _split_params(self, inner: nn.Module):
        """The trainable parameters, those of them that are perturbed, and
        the parameter names by ``id``."""
        names = {id(p): n for n, p in inner.named_parameters()}
        params = [
            p for group in self.optimizer.param_groups
            for p in group['params'] if p.requires_grad
        ]
        # Quantizer step sizes (``lsq_step``) are never perturbed (SAQ).
        perturbed = [
            p for p in params if not getattr(p, 'lsq_step', False)
            and not any(r.search(names.get(id(p), '')) for r in self.exclude)
        ]
        if not perturbed:
            raise config_error(
                'exclude', 'matches every trainable parameter',
                'Narrow the regexes so that some parameters are perturbed.')
        return params, perturbed, names

    def _bind(self, model: nn.Module) -> None:
        if model is self._model:
            return
        if getattr(getattr(model, 'train_step', None),
                   '_torchdynamo_orig_callable', None) is not None:
            raise config_error(
                'type', f'{type(self).__name__} cannot run inside a '
                'torch.compile-d train_step (it edits weights in place and '
                'hooks the data preprocessor)', 'Set compile=False.')
        inner = model.module if is_model_wrapper(model) else model
        params, perturbed, names = self._split_params(inner)
        # ASAM's T = |w| + eta applies to weights only, as in the official
        # ASAM code (``'weight' in name``); biases keep T = 1.
        self._asam_scaled = [
            'weight' in names.get(id(p), 'weight') for p in perturbed
        ]
        self._model, self._inner = model, inner
        self._params, self._perturbed = params, perturbed
        group_of = {id(p): i for i, group in enumerate(
            self.optimizer.param_groups) for p in group['params']}
        self._group_of_perturbed = [group_of[id(p)] for p in perturbed]
        self._rho_key = None
        # SAQ (Liu et al. 2021; FakeQuantHook(perturb='quantized')): layers
        # whose *quantized* weight is perturbed, along dL/dQ(w), so that
        # rounding cannot swallow the perturbation. They take part through
        # their protocol (arsam_mm/quant/modules.py), aligned with perturbed.
        saq = {id(m.weight): m for m in inner.modules()
               if getattr(m, 'perturb_quantized', False)}
        self._saq_layers = list(saq.values())
        self._quantized_layers = [saq.get(id(p)) for p in perturbed]
        if not self._saq_layers:
            self._quantized_layers = None
        self._batchnorms = [
            m for m in inner.modules() if isinstance(m, _BatchNorm)
        ]
        self.policy.bind(len(perturbed))
        psf = getattr(self.policy, 'psf', None)
        if psf is not None and len(psf) != len(perturbed):
            raise RuntimeError(
                f'The resumed {type(self).__name__} state holds {len(psf)} '
                f'PSF tensors but {len(perturbed)} parameters are perturbed '
                'now: the model, paramwise_cfg or optim_wrapper.exclude '
                'changed since the checkpoint was written.')

    # ----------------------------------------------------------- forward
    def _capture_batch(self, module, inputs, output) -> None:
        self._cycle_batches.append(output)

    @contextmanager
    def optim_context(self, model: nn.Module):
        self._bind(model)
        if self._cycle_decision is _NO_CYCLE:
            # The cycle's first micro-batch: one decision for all of it, so
            # that DDP knows at once which micro-batches skip all-reduce.
            epoch = self.message_hub.get_info('epoch', 0) or 0
            self._cycle_decision = self.policy.take_two_passes(epoch)
        self._decision = self._cycle_decision
        if self._decision is False:
            with super().optim_context(model):
                yield
            return
        # Undecided (None) iterations may turn into SAM ones: capture the
        # batch, but all-reduce the first pass as a one-pass step needs.
        self._local_first_pass = bool(
            self._decision and not self.sync_first_pass
            and hasattr(model, 'no_sync') and _dist.world_size() > 1)
        handle = self._inner.data_preprocessor.register_forward_hook(
            self._capture_batch)
        self._set_on_saq_layers('record_quantized_weight_grad', True)
        try:
            no_sync = model.no_sync() if self._local_first_pass else (
                nullcontext())
            with no_sync, super().optim_context(model):
                yield
        finally:
            handle.remove()
            self._set_on_saq_layers('record_quantized_weight_grad', False)

    def _set_on_saq_layers(self, name: str, value) -> None:
        for layer in self._saq_layers:
            setattr(layer, name, value)

    def _forward_context(self):
        """Autocast for the second forward (the AMP twins override it)."""
        return nullcontext()

    def _grad_scale(self) -> Optional[Tensor]:
        """The loss scale gradients carry (the AMP twins override it)."""
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
        return _loss_and_grad_norm(loss, None, norm)

    def _passes_finite(self, first_norms: Optional[Tensor], sam_loss: Tensor,
                       sam_grads: List[Tensor],
                       sam_norm: Optional[Tensor] = None) -> bool:
        """fp32: a non-finite loss or gradient in either pass of a SAM
        iteration stops the run here, naming the iteration and the pass,
        instead of poisoning the PSF and the schedule (one host sync per
        SAM iteration, every rank alike)."""
        norms = torch.cat([first_norms,
                           _loss_and_grad_norm(sam_loss, sam_grads, sam_norm)])
        finite = _dist.all_ranks_true_each(torch.isfinite(norms))
        if all(finite):
            return True
        self.policy.on_sam_step_skipped()
        bad = finite.index(False)
        which = ('first pass (at w)', 'second pass (at the perturbed '
                 'weights w + e)')[bad // 2]
        what = ('loss', 'gradient')[bad % 2]
        # total_iters counts this iteration only after the step (and is
        # restored on resume), so +1 is mmengine's 1-based Iter(train).
        raise FloatingPointError(
            f'{type(self).__name__}: non-finite {what} in the {which} of '
            f'training iteration {self.total_iters + 1}. The weights are '
            'restored and nothing of this iteration was stored. Remedies: '
            'lower the '
            'learning rate (optim_wrapper.optimizer.lr) or rho, clip '
            'gradients (optim_wrapper.clip_grad=dict(max_norm=...)), or '
            'train with AMP (--amp), whose loss scaler skips such steps.')

    @contextmanager
    def _batchnorm_stats_frozen(self):
        # With track_running_stats off in train mode, BN normalises with
        # batch statistics and updates neither running stats nor
        # num_batches_tracked (a momentum of 0 would still count batches).
        frozen = [
            m for m in self._batchnorms
            if m.training and m.track_running_stats
        ]
        for m in frozen:
            m.track_running_stats = False
        try:
            yield
        finally:
            for m in frozen:
                m.track_running_stats = True

    def _backward_uncounted(self, loss: Tensor) -> None:
        self.backward(loss)
        self._inner_count -= 1

    # ------------------------------------------------------------ update
    def _perturbed_grads(self):
        params = self._perturbed
        grads = [p.grad for p in params]
        if all(g is not None for g in grads):
            return params, grads, None
        index = [i for i, g in enumerate(grads) if g is not None]
        return [params[i] for i in index], [grads[i] for i in index], index

    def update_params(self,
                      loss: Tensor,
                      step_kwargs: Optional[dict] = None,
                      zero_kwargs: Optional[dict] = None) -> None:
        if self._decision is _NO_CONTEXT:
            raise RuntimeError(
                f'{type(self).__name__}.update_params was called without '
                'optim_context(model) around the forward: use the model\'s '
                'train_step (BaseModel / MMDistributedDataParallel) or wrap '
                'the forward in `with optim_wrapper.optim_context(model):`.')
        two_pass, self._decision = self._decision, _NO_CONTEXT
        if self._accumulative_counts > 1:
            # mmengine's divisor at this micro-batch (N, or the length of
            # the last, shorter cycle); the second pass divides by the same.
            self._cycle_factor = round(
                1.0 / float(self.scale_loss(torch.ones(()))))
        loss = self.scale_loss(loss)
        self.backward(loss)
        loss = loss.detach()
        self._cycle_loss = loss if self._cycle_loss is None else (
            self._cycle_loss + loss)
        self._cycle_micro += 1
        if not self.should_update():
            self.total_iters += 1
            self._log(False, None)
            return
        loss, micro = self._cycle_loss, self._cycle_micro
        if two_pass is None:
            _, grads, _ = self._perturbed_grads()
            two_pass = self.policy.decide_after_first_pass(
                grads, self._grad_scale())
        sharpness = None
        if two_pass:
            sharpness = self._sam_pass(loss)
        else:
            _, grads, index = self._perturbed_grads()
            self.policy.on_one_pass_step(grads, self._grad_scale(), index)
        self._end_cycle()
        self.total_iters += 1
        self.sam_iters += micro * int(bool(two_pass))
        self._log(two_pass, sharpness)
        self.step(**(step_kwargs or {}))
        self.zero_grad(**(zero_kwargs or {}))

    def _end_cycle(self) -> None:
        self._cycle_decision = _NO_CYCLE
        self._cycle_batches = []
        self._cycle_loss = None
        self._cycle_micro = 0
        self._set_on_saq_layers('quantized_weight_grad', None)

    def _second_pass(self) -> Tensor:
        """Forward/backward of the cycle's recorded micro-batches at the
        perturbed weights; their gradients accumulate as the first pass's
        did, and under DDP only the last one all-reduces. Returns the
        cycle's loss there, divided as mmengine divides the first pass's."""
        batches = self._cycle_batches
        no_sync = hasattr(self._model, 'no_sync') and _dist.world_size() > 1
        total = None
        for k, batch in enumerate(batches):
            last = k == len(batches) - 1
            sync = nullcontext() if last or not no_sync else (
                self._model.no_sync())
            with sync:
                with self._batchnorm_stats_frozen(), self._forward_context():
                    losses = self._model._run_forward(batch, mode='loss')
                sam_loss, _ = self._inner.parse_losses(losses)
                if self._accumulative_counts > 1:
                    sam_loss = sam_loss / self._cycle_factor
                self._backward_uncounted(sam_loss)
            sam_loss = sam_loss.detach()
            total = sam_loss if total is None else total + sam_loss
        return total

    def _sam_pass(self, loss: Tensor) -> Optional[Tensor]:
        if not self._cycle_batches:
            raise RuntimeError(
                f'{type(self).__name__} did not see the preprocessed batch: '
                "the model's data_preprocessor must run inside "
                'optim_context(model), as BaseModel.train_step does.')
        params, grads, index = self._perturbed_grads()
        # One per-tensor norm pass over g serves the finiteness check, the
        # perturbation's ||g|| and the policy's statistics.
        norms = tensor_norms(grads)
        norm = torch.linalg.vector_norm(norms)
        if not self._first_pass_finite(norm):
            if self._local_first_pass:
                _dist.all_reduce_mean_(grads)  # every rank skips the step
            return None
        first_grads = None
        if self.policy.needs_first_grads:
            # Into a buffer the policy lends (ARSAM: its stored PSF, which
            # the new one replaces in place), else a fresh copy.
            first_grads = self.policy.first_grads_buffer(index)
            if first_grads is None:
                first_grads = clone_tensors(grads)
            else:
                torch._foreach_copy_(first_grads, grads)
            if self._local_first_pass:
                # PSF = g_s - g must be the same on every rank, or the
                # one-pass iterations would move the ranks apart.
                _dist.all_reduce_mean_(first_grads)
        first_norms = self._first_pass_norms(loss, norm)
        latent, perturbation = self._perturbation(params, grads, index, norm)
        with torch.no_grad():
            weights = clone_tensors(latent)
            torch._foreach_add_(latent, perturbation)
            del perturbation
            torch._foreach_zero_([p.grad for p in self._params
                                  if p.grad is not None])
        try:
            sam_loss = self._second_pass()
        finally:
            self._set_on_saq_layers('quantized_weight_offset', None)
            with torch.no_grad():
                torch._foreach_copy_(latent, weights)
        sam_grads = [p.grad for p in params]
        # A local first pass was all-reduced into first_grads since: its
        # norms are not theirs.
        step_args = (first_grads, sam_grads, self._grad_scale(), index,
                     None if self._local_first_pass else norms)
        sam_norm = self.policy.form_sam_step(*step_args)
        if not self._passes_finite(first_norms, sam_loss, sam_grads,
                                   sam_norm):
            # Nothing non-finite enters the policy's state.
            self.policy.on_sam_step_skipped()
            return None
        self.policy.on_sam_step(*step_args)
        return (sam_loss - loss).detach()

    def _group_rhos(self, index) -> Union[float, List[float]]:
        """This step's rho of each perturbed tensor (``index`` as in
        :meth:`_perturbed_grads`), or one float when all share it. The
        per-tensor list is rebuilt only when a group's rho changed."""
        key = [group['rho'] for group in self.optimizer.param_groups]
        if key != self._rho_key:
            self._rho_key = key
            per_tensor = [key[g] for g in self._group_of_perturbed]
            self._rho_uniform = (per_tensor[0]
                                 if len(set(per_tensor)) == 1 else None)
            self._rho_per_tensor = per_tensor
        if self._rho_uniform is not None:
            return self._rho_uniform
        rhos = self._rho_per_tensor
        return rhos if index is None else [rhos[i] for i in index]

    def _perturbation(self, params, grads, index, norm=None):
        """``e`` for the latent weights it applies to, ``(params, e)``; the
        SAQ layers get theirs as ``quantized_weight_offset``.

        One global norm over every tensor with ``rho > 0``; each tensor's
        share of ``e`` scales with its group's rho (rho = 0: untouched).
        ``norm`` is ``||g||`` over ``grads``, reused where it is the norm
        SAM divides by."""
        scaled = self._asam_scaled if self.adaptive else None
        layers = self._quantized_layers
        if index is not None:
            scaled, layers = _pick(scaled, index), _pick(layers, index)
        if layers is not None:
            norm = None
            # dL/dQ(w) where the layer ran (a frozen/unused one: dL/dw).
            grads = [
                g if layer is None or layer.quantized_weight_grad is None
                else layer.quantized_weight_grad
                for layer, g in zip(layers, grads)
            ]
        rhos = self._group_rhos(index)
        if isinstance(rhos, list):
            norm = None
            active = [i for i, rho in enumerate(rhos) if rho > 0]
            params, grads = _pick(params, active), _pick(grads, active)
            scaled, layers = _pick(scaled, active), _pick(layers, active)
            rhos = _pick(rhos, active)
        perturbation, _ = sam_perturbation(
            params, grads, 1.0 if isinstance(rhos, list) else rhos,
            self.eps, self.adaptive, self.eta, scaled, norm)
        if isinstance(rhos, list):
            torch._foreach_mul_(perturbation, rhos)
        if layers is None:
            return params, perturbation
        latent, latent_e = [], []
        for p, e, layer in zip(params, perturbation, layers):
            if layer is not None:
                layer.quantized_weight_offset = e
            else:
                latent.append(p)
                latent_e.append(e)
        return latent, latent_e

    # ----------------------------------------------------------- logging
    def _log(self, two_pass: bool, sharpness: Optional[Tensor]) -> None:
        hub = self.message_hub
        hub.update_scalar('train/sam_rate', self.sam_iters / self.total_iters)
        hub.update_scalar('train/rho', self.optimizer.param_groups[0]['rho'])
        scalars = self.policy.log_scalars()
        if two_pass:
            # Device values are read back on two-pass iterations only; the
            # one-pass iterations log the last value without a host sync.
            if sharpness is not None:
                scalars['sharpness'] = sharpness
            tensors = {
                k: v for k, v in scalars.items() if isinstance(v, Tensor)
            }
            if tensors:
                values = torch.stack([t.float() for t in tensors.values()])
                self._log_cache.update(zip(tensors, values.tolist()))
        for key, value in scalars.items():
            if not isinstance(value, Tensor):
                hub.update_scalar(f'train/{key}', float(value))
        for key, value in self._log_cache.items():
            hub.update_scalar(f'train/{key}', value)

    # ------------------------------------------------------------- state
    def state_dict(self) -> dict:
        state = super().state_dict()
        state['sam_state'] = dict(
            policy=self.policy.state_dict(),
            sam_iters=self.sam_iters,
            total_iters=self.total_iters,
            log_cache=dict(self._log_cache),
            # Saved in the middle of an accumulation cycle: the decision
            # its remaining micro-batches keep after a resume.
            cycle_decision=(None if self._cycle_decision is _NO_CYCLE else
                            dict(two_pass=self._cycle_decision)))
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
        self._log_cache = dict(sam_state['log_cache'])
        cycle = sam_state.get('cycle_decision')
        self._cycle_decision = _NO_CYCLE if cycle is None else cycle[
            'two_pass']

    def __repr__(self) -> str:
        return (f'{super().__repr__()}\nrho (default): {self.rho}, adaptive: '
                f'{self.adaptive}, policy: {type(self.policy).__name__}')


def policy_arguments(policy_cls):
    """A base class that builds ``policy_cls`` from the wrapper's arguments.

    The constructor arguments of ``policy_cls`` become arguments of the
    wrapper (so a config sets them next to ``rho``); the rest goes on to
    :class:`SharpnessAwareMixin` and mmengine's wrapper.
    """
    names = list(inspect.signature(policy_cls).parameters)

    class PolicyArguments:

        def __init__(self, optimizer, **kwargs):
            policy_kwargs = {k: kwargs.pop(k) for k in names if k in kwargs}
            super().__init__(
                optimizer=optimizer, policy=policy_cls(**policy_kwargs),
                **kwargs)

    PolicyArguments.__name__ = f'{policy_cls.__name__}Arguments'
    return PolicyArguments


class AmpOnAnyDevice(AmpOptimWrapper):
    """``AmpOptimWrapper`` that also runs on CPU (bfloat16 autocast).

    mmengine's class refuses to build without an accelerator. On a CPU-only
    machine this one uses ``torch.amp.GradScaler('cpu')`` and bfloat16; on
    GPUs it is mmengine's class unchanged.
    """

    def __init__(self,
                 loss_scale='dynamic',
                 dtype=None,
                 use_fsdp: bool = False,
                 **kwargs):
        if use_fsdp:
            raise config_error('use_fsdp', 'FSDP is not supported',
                               'Remove use_fsdp from optim_wrapper.')
        from mmengine.device import get_device
        if get_device() != 'cpu':
            super().__init__(loss_scale=loss_scale, dtype=dtype, **kwargs)
            return
        if dtype not in (None, 'bfloat16', torch.bfloat16):
            raise config_error(
                'dtype', f'CPU autocast supports only bfloat16, got {dtype}',
                "Set optim_wrapper.dtype='bfloat16' or train on a GPU.")
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        if isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            scaler_args = dict(init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            scaler_args = dict(loss_scale)
        elif loss_scale == 'dynamic':
            scaler_args = {}
        else:
            raise TypeError('loss_scale must be of type float, dict, or '
                            f'"dynamic", but got {loss_scale}')
        self.loss_scaler = torch.amp.GradScaler('cpu', **scaler_args)
        self.cast_dtype = torch.bfloat16


class AmpSharpnessAwareMixin(SharpnessAwareMixin):
    """AMP specifics: scaled gradients, autocast, overflow handling."""

    def _forward_context(self):
        from mmengine.runner.amp import autocast
        return autocast(dtype=self.cast_dtype)

    def _grad_scale(self) -> Optional[Tensor]:
        if not self.loss_scaler.is_enabled():
            return None
        return self.loss_scaler._scale

    def _first_pass_finite(self, norm: Tensor) -> bool:
        # An overflowed first pass has no direction to ascend along: skip
        # the second pass and let the scaler skip the step and back off.
        return _dist.all_ranks_true(torch.isfinite(norm))

    def _first_pass_norms(self, loss, norm):
        return None  # checked by _first_pass_finite already

    def _passes_finite(self, first_norms, sam_loss, sam_grads,
                       sam_norm=None) -> bool:
        # A perturbed pass that overflows after a finite first one: the
        # scaler skips this step and backs off once; nothing of it reaches
        # the policy (histories and rate keep their values, the policy
        # drops its PSF), so the next iterations are ordinary steps.
        norms = _loss_and_grad_norm(sam_loss, sam_grads, sam_norm)
        return _dist.all_ranks_true(torch.isfinite(norms).all())


@OPTIM_WRAPPERS.register_module()
class SAMOptimWrapper(SharpnessAwareMixin, OptimWrapper):
    """SAM (Foret et al., ICLR 2021), or ASAM with ``adaptive=True``.

    Examples:
        >>> optim_wrapper = dict(
        ...     type='SAMOptimWrapper', rho=0.05,
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
    """


@OPTIM_WRAPPERS.register_module()
class ARSAMOptimWrapper(policy_arguments(ARSAMPolicy), SharpnessAwareMixin,
                        OptimWrapper):
    """ARSAM (Deng & Pang, arXiv 2510.03763): SAM on an adaptive subset of
    iterations, the stored PSF mixed into the others.

    Takes every argument of :class:`SharpnessAwareMixin` and of
    :class:`~arsam_mm.optim.policies.ARSAMPolicy` (``window``,
    ``warmup_iters``/``warmup_epochs``, ``beta``, ``max_reuse``, ``a1``,
    ``a2``, ``max_p``, ``min_p``, ``schedule``, ``reference_iters``,
    ``blocks``, ``stat_layers``, ``seed``).

    Examples:
        >>> optim_wrapper = dict(type='ARSAMOptimWrapper', rho=0.05)
    """


@OPTIM_WRAPPERS.register_module()
class AmpSAMOptimWrapper(AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`SAMOptimWrapper` with mixed precision (``AmpOptimWrapper``
    arguments ``loss_scale`` and ``dtype`` accepted)."""


@OPTIM_WRAPPERS.register_module()
class AmpARSAMOptimWrapper(policy_arguments(ARSAMPolicy),
                           AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`ARSAMOptimWrapper` with mixed precision."""
