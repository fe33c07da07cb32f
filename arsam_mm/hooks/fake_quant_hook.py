"""``FakeQuantHook``: train (and evaluate) the fake-quantized (LSQ) twin of
any mmengine model, e.g. with ARSAM::

    custom_hooks = [dict(type='FakeQuantHook', w_bits=4, a_bits=4)]

The Conv2d/Linear layers become :class:`~arsam_mm.quant.QuantConv2d` /
``QuantLinear`` *in place* (same module and Parameter objects, so the
optimizer and DDP built before the hooks ran still hold them). Their LSQ
step sizes join the optimizer as one extra param group without weight
decay (and every LR scheduler), are all-reduced under DDP, and are never
perturbed by the SAM-family wrappers.
"""
import logging
import re
from typing import Optional, Sequence

import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..quant import QUANT_TYPES, quantize_module

__all__ = ['FakeQuantHook']

_TYPES = {cls.__name__: cls for cls in QUANT_TYPES}


def _bad(key, problem, fix):
    return ValueError(f'FakeQuantHook.{key}: {problem}. {fix}')


def _check_bits(key, bits, allow_none):
    if bits is None and allow_none:
        return
    if not isinstance(bits, int) or not 2 <= bits <= 8:
        raise _bad(key, f'{bits!r} is not a bit width in 2..8',
                   'Use an integer from 2 to 8' +
                   (' (or None for full precision).' if allow_none else '.'))


@HOOKS.register_module()
class FakeQuantHook(Hook):
    """Fake-quantize a model with LSQ for training and evaluation.

    Args:
        w_bits (int): weight bits, 2..8 (signed, per output channel).
        a_bits (int, optional): input-activation bits, 2..8; None keeps
            activations in full precision.
        types (Sequence[str]): layer types to quantize (``Conv2d``,
            ``Linear``; exact types, subclasses are left alone).
        skip (Sequence[str]): regexes over module names left unquantized.
        first_last_bits (int, optional): bits of the first and last
            quantized layer (first conv, classifier/head), as the QAT
            literature does; None keeps them in full precision.
        freeze_bn_after (int, optional): from this iteration (or epoch,
            with ``by_epoch``) on, BatchNorm layers run in eval mode.
        freeze_steps_after (int, optional): from then on step sizes stop
            learning.
        by_epoch (bool): the two thresholds count epochs. Defaults to False.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 w_bits: int = 4,
                 a_bits: Optional[int] = 4,
                 types: Sequence[str] = ('Conv2d', 'Linear'),
                 skip: Sequence[str] = (),
                 first_last_bits: Optional[int] = 8,
                 freeze_bn_after: Optional[int] = None,
                 freeze_steps_after: Optional[int] = None,
                 by_epoch: bool = False):
        _check_bits('w_bits', w_bits, allow_none=False)
        _check_bits('a_bits', a_bits, allow_none=True)
        _check_bits('first_last_bits', first_last_bits, allow_none=True)
        unknown = [t for t in types if t not in _TYPES]
        if unknown:
            raise _bad('types', f'cannot quantize {unknown}',
                       f'Choose from {sorted(_TYPES)}.')
        self.w_bits, self.a_bits = w_bits, a_bits
        self.types = tuple(_TYPES[t] for t in types)
        self.skip = [re.compile(p) for p in skip]
        self.first_last_bits = first_last_bits
        self.freeze_bn_after = freeze_bn_after
        self.freeze_steps_after = freeze_steps_after
        self.by_epoch = by_epoch

    # ----------------------------------------------------------- swapping
    def quantize(self, model: nn.Module) -> list:
        """Quantize ``model`` in place (idempotent); returns its layers."""
        done = [m for m in model.modules() if hasattr(m, 'weight_step')]
        if done:
            return done
        layers = [(name, m) for name, m in model.named_modules()
                  if type(m) in self.types
                  and not any(r.search(name) for r in self.skip)]
        if not layers:
            raise _bad('types', 'no layer of the model matches',
                       'Check types and skip.')
        for index, (name, module) in enumerate(layers):
            bits = (self.w_bits, self.a_bits)
            if index in (0, len(layers) - 1):
                if self.first_last_bits is None:
                    continue
                bits = (self.first_last_bits, self.first_last_bits
                        if self.a_bits is not None else None)
            quantize_module(module, *bits)
        return [m for m in model.modules() if hasattr(m, 'weight_step')]

    @staticmethod
    def _inner(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_run(self, runner) -> None:
        layers = self.quantize(self._inner(runner))
        self.steps = [p for m in layers for p in (m.weight_step, m.act_step)]
        optim_wrapper = getattr(runner, 'optim_wrapper', None)
        if not isinstance(optim_wrapper, OptimWrapper):
            return  # evaluation-only run (val/test before train)
        optimizer = optim_wrapper.optimizer
        held = {id(p) for g in optimizer.param_groups for p in g['params']}
        if id(self.steps[0]) in held:
            return
        group = dict(params=self.steps, weight_decay=0.0)
        optimizer.add_param_group(group)
        group = optimizer.param_groups[-1]
        for scheduler in self._schedulers(runner):
            key = scheduler.param_name
            group.setdefault(f'initial_{key}', group[key])
            scheduler.base_values.append(group[f'initial_{key}'])
        if dist.is_available() and dist.is_initialized():
            # Added after DDP was built: its reducer does not know them.
            world = dist.get_world_size()

            def sync(param):
                dist.all_reduce(param.grad)
                param.grad /= world

            for step in self.steps:
                step.register_post_accumulate_grad_hook(sync)
        print_log(f'FakeQuantHook: {len(layers)} layers quantized '
                  f'(W{self.w_bits}A{self.a_bits}), {len(self.steps)} step '
                  'sizes in a new param group', logger='current')

    @staticmethod
    def _schedulers(runner):
        schedulers = getattr(runner, 'param_schedulers', None) or []
        if isinstance(schedulers, dict):
            return [s for group in schedulers.values() for s in group]
        return list(schedulers)

    def before_val(self, runner) -> None:
        self.quantize(self._inner(runner))

    def before_test(self, runner) -> None:
        self.quantize(self._inner(runner))

    # ----------------------------------------------------------- freezing
    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        # Re-applied every iteration: the loop calls model.train() each time.
        now = runner.epoch if self.by_epoch else runner.iter
        model = self._inner(runner)
        if self.freeze_bn_after is not None and now >= self.freeze_bn_after:
            for m in model.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        if (self.freeze_steps_after is not None
                and now >= self.freeze_steps_after):
            for step in self.steps:
                if step.requires_grad:
                    step.requires_grad_(False)
                    step.grad = None

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        state = checkpoint.get('state_dict', {})
        if state and not any(k.endswith('weight_step') for k in state):
            print_log('FakeQuantHook: the checkpoint is full precision; step '
                      'sizes start from the first batch.', logger='current',
                      level=logging.INFO)


