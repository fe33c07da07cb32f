"""Export of a fake-quantized model: weights as integers with their
per-channel step sizes and the model size at the trained bit widths, or an
ONNX graph with QuantizeLinear/DequantizeLinear (QDQ) nodes."""
from contextlib import contextmanager
from typing import Dict

import torch
from torch import Tensor, nn

from .lsq import lsq_to_int, quant_range

__all__ = ['export_integer_weights', 'export_onnx_qdq', 'qdq_forward']


@torch.no_grad()
def export_integer_weights(model: nn.Module) -> Dict:
    """Integer weights (``int8`` tensors holding ``w_bits``-bit values) and
    step sizes of every quantized layer, the remaining parameters in full
    precision, and sizes in bytes."""
    layers, float_params = {}, {}
    quantized_bits = 0
    quantized_ids = set()
    for name, module in model.named_modules():
        if not hasattr(module, 'weight_step'):
            continue
        qn, qp = quant_range(module.w_bits, True)
        ints = lsq_to_int(module.weight, module.weight_step, qn, qp)
        layers[name] = dict(
            weight_int=ints, weight_step=module.weight_step.clone(),
            w_bits=module.w_bits, a_bits=module.a_bits,
            act_step=module.act_step.clone(),
            act_signed=bool(module.act_signed > 0))
        quantized_bits += ints.numel() * module.w_bits
        quantized_ids.add(id(module.weight))
        quantized_ids.update({id(module.weight_step), id(module.act_step)})
    for name, param in model.named_parameters():
        if id(param) not in quantized_ids:
            float_params[name] = param.detach().clone()
    float_bytes = sum(p.numel() * 4 for p in float_params.values())
    step_bytes = sum(v['weight_step'].numel() * 4 + 4
                     for v in layers.values())
    full_bytes = sum(p.numel() * 4 for p in model.parameters()
                     if not getattr(p, 'lsq_step', False))
    return dict(
        layers=layers, float_params=float_params,
        size=dict(full_precision_bytes=full_bytes,
                  quantized_bytes=quantized_bits // 8 + step_bytes +
                  float_bytes))


class _QDQMixin:
    """Forward of a quantized layer with PyTorch's fake-quantize ops, which
    the ONNX exporter turns into QuantizeLinear/DequantizeLinear pairs.

    n-bit values are stored in 8-bit QDQ: the tensor is first clamped to the
    n-bit range (a constant for weights, a Clip node for activations), so
    the 8-bit grid with the same step gives the n-bit values exactly.
    """

    def _quantized_inputs(self, x):
        qn, qp = quant_range(self.w_bits, True)
        step = self.weight_step.detach()
        with torch.no_grad():
            weight = torch.maximum(torch.minimum(self.weight, qp * step),
                                   qn * step)
        scale = step.flatten()
        weight = torch.fake_quantize_per_channel_affine(
            weight, scale, torch.zeros_like(scale, dtype=torch.int32), 0,
            -128, 127)
        if self.a_bits is not None:
            qn, qp = self._act_range()
            step = self.act_step.detach()
            x = torch.clamp(x, qn * step, qp * step)
            low, high = (-128, 127) if qn < 0 else (0, 255)
            x = torch.fake_quantize_per_tensor_affine(
                x, step, torch.zeros((), dtype=torch.int32), low, high)
        return x, weight


@contextmanager
def qdq_forward(model: nn.Module):
    """Inside, the quantized layers of ``model`` run PyTorch's
    fake-quantize ops (the ONNX QDQ form) instead of the LSQ arithmetic."""
    from .modules import QUANT_TYPES
    twins = {
        cls: type(f'QDQ{cls.__name__}', (_QDQMixin, cls), {})
        for cls in QUANT_TYPES.values()
    }
    swapped = [(m, type(m)) for m in model.modules() if type(m) in twins]
    for module, cls in swapped:
        module.__class__ = twins[cls]
    try:
        yield
    finally:
        for module, cls in swapped:
            module.__class__ = cls


class _TensorForward(nn.Module):
    """``model(inputs, mode='tensor')`` as a plain forward (for tracing)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model(inputs, mode='tensor')


def export_onnx_qdq(model: nn.Module, inputs: Tensor, path: str,
                    opset: int = 17) -> None:
    """Write ``model`` (an mmengine model after ``FakeQuantHook``) as ONNX
    with QuantizeLinear/DequantizeLinear around every quantized layer's
    weight and input. ``inputs``: a normalised batch ``(N, C, H, W)``."""
    if not any(hasattr(m, 'weight_step') for m in model.modules()):
        raise ValueError('export_onnx_qdq: the model has no quantized layer '
                         '(was FakeQuantHook applied?).')
    was_training = model.training
    model.eval()
    try:
        with qdq_forward(model):
            torch.onnx.export(
                _TensorForward(model), (inputs, ), path, dynamo=False,
                opset_version=opset, input_names=['inputs'],
                output_names=['outputs'],
                dynamic_axes=dict(inputs={0: 'batch'}, outputs={0: 'batch'}))
    finally:
        model.train(was_training)
