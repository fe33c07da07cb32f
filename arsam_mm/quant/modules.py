"""Fake-quantized ``Conv2d``/``Linear``: the *same* module objects with
their class swapped, so the weight and bias Parameters (already held by
the optimizer and by DDP) stay the same objects.

Weights: signed, a step per output channel. Activations (the layer input):
a step per tensor, unsigned when the first batch it sees is non-negative
(after a ReLU), signed otherwise. Steps are initialised from the first
batch, averaged over ranks.

A layer knows nothing of the optimizer. For SAQ-style training (an
optimizer that perturbs the *quantized* weight, ``perturb_quantized``) it
offers a small protocol the optimizer drives:

* ``record_quantized_weight_grad = True``: the next forwards keep
  ``dL/dQ(w)`` in ``quantized_weight_grad`` once the backward has run,
  summed over backwards (accumulated micro-batches) until it is set back
  to ``None``;
* ``quantized_weight_offset = e``: forwards use ``Q(w) + e`` (and never
  initialise step sizes) until it is set back to ``None``.
"""
import torch
import torch.nn.functional as F
from torch import nn

from arsam._dist import all_reduce_mean_

from .lsq import lsq_fake_quant, lsq_init_step, quant_range

__all__ = [
    'QuantConv2d', 'QuantLinear', 'quantize_module', 'QUANT_TYPES', 'StepSize'
]


class StepSize(nn.Parameter):
    """An LSQ step size. SAM-family wrappers never perturb it (``lsq_step``);
    being a type rather than an attribute, it survives ``copy.deepcopy``."""

    lsq_step = True


class _LSQMixin:
    """Shared state and logic of the quantized layers."""

    def _setup_quant(self, w_bits, a_bits):
        weight = self.weight
        self.w_bits, self.a_bits = w_bits, a_bits
        channels = weight.shape[0]
        shape = (channels, ) + (1, ) * (weight.dim() - 1)
        self.weight_step = StepSize(weight.new_ones(shape))
        self.act_step = StepSize(weight.new_ones(()))
        self.perturb_quantized = False  # SAQ mode (FakeQuantHook.perturb)
        self.record_quantized_weight_grad = False
        self.quantized_weight_grad = None
        self.quantized_weight_offset = None
        self.register_buffer('quant_initialized', weight.new_zeros(()))
        self.register_buffer('act_signed', weight.new_ones(()))
        self._host_flags = None

    def _flags(self):
        """``(initialized, act_signed)`` as Python bools, read from the
        buffers once instead of on every forward (a device sync on GPU)."""
        if self._host_flags is None:
            self._host_flags = (bool(self.quant_initialized),
                                bool(self.act_signed > 0))
        return self._host_flags

    def restart_initialization(self) -> None:
        """Take the step sizes from the next batch again."""
        self.quant_initialized.zero_()
        self._host_flags = None

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._host_flags = None  # the buffers may have changed

    def _act_range(self):
        return quant_range(self.a_bits, self._flags()[1])

    @torch.no_grad()
    def _initialize(self, x):
        stats = torch.stack([
            x.abs().mean(),
            (x.min() < 0).float(),
        ])
        all_reduce_mean_([stats])
        self.act_signed.fill_(float(stats[1] > 0))
        self._host_flags = None
        if self.a_bits is not None:  # else the input stays full precision
            _, qp = self._act_range()
            self.act_step.copy_((2 * stats[0] / qp**0.5).clamp_min(1e-8))
        _, w_qp = quant_range(self.w_bits, True)
        self.weight_step.copy_(
            lsq_init_step(self.weight, w_qp, dim=0).view_as(self.weight_step))
        self.quant_initialized.fill_(1)
        self._host_flags = None

    def _keep_quantized_weight_grad(self, grad):
        kept = self.quantized_weight_grad
        self.quantized_weight_grad = grad if kept is None else kept + grad

    def _quantized_inputs(self, x):
        offset = self.quantized_weight_offset
        if not self._flags()[0] and offset is None:
            self._initialize(x)
        w_qn, w_qp = quant_range(self.w_bits, True)
        weight = lsq_fake_quant(self.weight, self.weight_step, w_qn, w_qp)
        if offset is not None:
            weight = weight + offset
        elif self.record_quantized_weight_grad and weight.requires_grad:
            weight.register_hook(self._keep_quantized_weight_grad)
        if self.a_bits is not None:
            qn, qp = self._act_range()
            x = lsq_fake_quant(x, self.act_step, qn, qp)
        return x, weight


class QuantConv2d(_LSQMixin, nn.Conv2d):

    def forward(self, x):
        x, weight = self._quantized_inputs(x)
        return self._conv_forward(x, weight, self.bias)


class QuantLinear(_LSQMixin, nn.Linear):

    def forward(self, x):
        x, weight = self._quantized_inputs(x)
        return F.linear(x, weight, self.bias)


QUANT_TYPES = {nn.Conv2d: QuantConv2d, nn.Linear: QuantLinear}


def quantize_module(module: nn.Module, w_bits: int, a_bits) -> nn.Module:
    """Turn ``module`` (exactly Conv2d or Linear) into its quantized twin in
    place, keeping every existing Parameter object."""
    target = QUANT_TYPES[type(module)]
    module.__class__ = target
    module._setup_quant(w_bits, a_bits)
    return module
