"""``FakeQuantHook``: train (and evaluate) the fake-quantized (LSQ) twin of
any mmengine model, e.g. with ARSAM::

    custom_hooks = [dict(type='FakeQuantHook', w_bits=4, a_bits=4)]

The Conv2d/Linear layers become :class:`~arsam_mm.quant.QuantConv2d` /
``QuantLinear`` *in place* (same module and Parameter objects, so the
optimizer and DDP built before the hooks ran still hold them). Their LSQ
step sizes join the optimizer as one extra param group without weight
decay (and every LR scheduler), are all-reduced under DDP, and are never
perturbed by the SAM-family wrappers. The hook orders the jobs; each is a
unit of ``arsam_mm/quant``: the swap (``swap.py``), the step sizes' param
group and DDP average (``training.py``), the layers (``modules.py``).
"""
import logging
import re
from typing import Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS
from torch import nn

from arsam._checks import ConfigError

from ..optim.engine_glue import unwrap
from ..quant import QUANT_TYPES
from ..quant.swap import OUTPUT_LAYERS, quantize_model, quantized_layers
from ..quant.training import StepGradAverager, steps_in_own_group

__all__ = ['FakeQuantHook']

_TYPES = {cls.__name__: cls for cls in QUANT_TYPES}
MIN_STEP = 1e-8  # step sizes are kept at or above this after every update


def _bad(key, problem, fix):  # the hook is its own front end
    return ConfigError(key, problem, fix, owner='FakeQuantHook')


def _check_bits(key, bits, allow_none):
    if bits is None and allow_none:
        return
    if not isinstance(bits, int) or not 2 <= bits <= 8:
        raise _bad(key, f'{bits!r} is not a bit width in 2..8',
                   'Use an integer from 2 to 8' +
                   (' (or None for full precision).' if allow_none else '.'))


def _patterns(key, patterns):
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except (re.error, TypeError) as error:
            raise _bad(key, f'{pattern!r} is not a valid regex ({error})',
                       'Escape special characters such as [ ( . with a '
                       'backslash.') from None
    return compiled


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
        first_last_bits (int, optional): bits of the first layer (the
            stem conv) and of the output layers, as the QAT literature
            does; None keeps them in full precision.
        output_layers (Sequence[str]): regexes naming the output layers
            that get ``first_last_bits``; the defaults match mmseg's
            ``conv_seg``, mmpose's ``final_layer`` and SimCC
            ``mlp_head_x/y``, and mmpretrain's ``head.fc``. When none
            matches, the model's last layer is taken.
        perturb (str): where SAM-family wrappers perturb the quantized
            layers' weights. ``'latent'`` (default): the full-precision
            weights, like every other parameter. ``'quantized'`` (SAQ, Liu
            et al. 2021): the fake-quantized weights ``Q(w)``, along
            ``dL/dQ(w)``, so rounding cannot absorb the perturbation; the
            latent weights stay untouched during the second pass. Step
            sizes are never perturbed in either mode.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 w_bits: int = 4,
                 a_bits: Optional[int] = 4,
                 types: Sequence[str] = ('Conv2d', 'Linear'),
                 skip: Sequence[str] = (),
                 first_last_bits: Optional[int] = 8,
                 output_layers: Sequence[str] = OUTPUT_LAYERS,
                 perturb: str = 'latent'):
        if perturb not in ('latent', 'quantized'):
            raise _bad('perturb', f'{perturb!r} is not a perturbation mode',
                       "Use 'latent' (default) or 'quantized' (SAQ).")
        _check_bits('w_bits', w_bits, allow_none=False)
        _check_bits('a_bits', a_bits, allow_none=True)
        _check_bits('first_last_bits', first_last_bits, allow_none=True)
        unknown = [t for t in types if t not in _TYPES]
        if unknown:
            raise _bad('types', f'cannot quantize {unknown}',
                       f'Choose from {sorted(_TYPES)}.')
        self.w_bits, self.a_bits = w_bits, a_bits
        self.types = tuple(_TYPES[t] for t in types)
        self.skip = _patterns('skip', skip)
        self.first_last_bits = first_last_bits
        self.output_layers = _patterns('output_layers', output_layers)
        # The default patterns name several toolboxes' heads: most match
        # nothing in a given model, and that says nothing.
        self._own_outputs = tuple(output_layers) != tuple(OUTPUT_LAYERS)
        self.perturb = perturb
        self.layers, self.steps = [], []
        self._averager = None  # the DDP average of the steps' gradients
        self._steps_loaded = False  # a checkpoint brought trained steps

    # ----------------------------------------------------------- swapping
    def quantize(self, model: nn.Module) -> list:
        """Quantize ``model`` in place (idempotent); returns its layers."""
        layers = quantized_layers(model)
        if not layers:
            self._warn_unmatched(model)
            if not quantize_model(model, self.types, self.skip, self.w_bits,
                                  self.a_bits, self.first_last_bits,
                                  self.output_layers):
                raise _bad('types', 'no layer of the model matches',
                           'Check types and skip.')
            layers = quantized_layers(model)
        for layer in layers:  # not in checkpoints: set on every call
            layer.perturb_quantized = self.perturb == 'quantized'
        return layers

    def _warn_unmatched(self, model: nn.Module) -> None:
        """A ``skip`` (or own ``output_layers``) pattern that matches no
        layer name changes nothing: say so, naming it."""
        names = [n for n, m in model.named_modules() if type(m) in self.types]
        keys = [('skip', self.skip)] + (
            [('output_layers', self.output_layers)] if self._own_outputs
            else [])
        for key, patterns in keys:
            for pattern in patterns:
                if names and not any(pattern.search(n) for n in names):
                    print_log(
                        f'FakeQuantHook: {key} pattern {pattern.pattern!r} '
                        'matches no layer name (names as in '
                        f'model.named_modules(), e.g. {names[0]!r}); it '
                        'changes nothing.', logger='current',
                        level=logging.WARNING)

    @staticmethod
    def _inner(runner):
        return unwrap(runner.model)

    def before_run(self, runner) -> None:
        self.layers = self.quantize(self._inner(runner))
        self.steps = [p for m in self.layers
                      for p in (m.weight_step, m.act_step)]
        if self._averager is None:
            self._averager = StepGradAverager(self.steps)
        optim_wrapper = getattr(runner, 'optim_wrapper', None)
        if isinstance(optim_wrapper, OptimWrapper) and steps_in_own_group(
                optim_wrapper.optimizer, self.steps, self._schedulers(runner)):
            print_log(f'FakeQuantHook: {len(self.layers)} layers quantized '
                      f'(W{self.w_bits}A{self.a_bits}), {len(self.steps)} '
                      'step sizes in a new param group', logger='current')

    def before_train(self, runner) -> None:
        # Steps set by an evaluation before training (runner.val() before
        # runner.train()) were taken from the weights before
        # init_weights/load_from: start them again from the first batch,
        # unless a checkpoint brought trained ones.
        if runner.iter == 0 and not self._steps_loaded:
            for layer in self.layers:
                layer.restart_initialization()

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

    # ----------------------------------------------------------- training
    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        # A step size at or below zero turns the quantizer inside out (the
        # clamp range flips); optimizers do not know that bound.
        with torch.no_grad():
            torch._foreach_clamp_min_(self.steps, MIN_STEP)

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        state = checkpoint.get('state_dict', {})
        self._steps_loaded = any(k.endswith('weight_step') for k in state)
        if state and not self._steps_loaded:
            print_log('FakeQuantHook: the checkpoint is full precision; step '
                      'sizes start from the first batch.', logger='current',
                      level=logging.INFO)


