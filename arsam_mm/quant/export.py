"""Export of a fake-quantized model: weights as integers with their
per-channel step sizes, or an ONNX integer model (QDQ) that takes the
pixels the config's test pipeline yields."""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from .lsq import lsq_to_int, quant_range

__all__ = ['export_integer_weights', 'export_onnx', 'qdq_forward',
           'float_forward', 'input_contract', 'InputContract']


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

    n-bit values are stored in 8-bit QDQ: the weight is clamped to the
    n-bit range before the export (a constant, so its integers fold into
    an int8 initializer: ``onnx_graph.py``), the activation by a Clip node,
    so the 8-bit grid with the same step gives the n-bit values exactly.
    """

    def _quantized_inputs(self, x):
        qn, qp = quant_range(self.w_bits, True)
        step = self.weight_step.detach()
        weight = torch.maximum(torch.minimum(self.weight.detach(), qp * step),
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


class _FloatMixin:
    """Forward of a quantized layer without its quantizers (the float
    twin of an export, for size and speed comparisons)."""

    def _quantized_inputs(self, x):
        return x, self.weight


@contextmanager
def _swapped(model: nn.Module, mixin, prefix: str):
    from .modules import QUANT_TYPES
    twins = {
        cls: type(f'{prefix}{cls.__name__}', (mixin, cls), {})
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


def qdq_forward(model: nn.Module):
    """Inside, the quantized layers of ``model`` run PyTorch's
    fake-quantize ops (the ONNX QDQ form) instead of the LSQ arithmetic."""
    return _swapped(model, _QDQMixin, 'QDQ')


def float_forward(model: nn.Module):
    """Inside, the quantized layers of ``model`` run in full precision."""
    return _swapped(model, _FloatMixin, 'Float')


@dataclass
class InputContract:
    """What the exported graph takes: the pixels the config's test pipeline
    yields (``N x C x H x W`` float, the pipeline's channel order, 0-255),
    before the data preprocessor, whose work the graph does itself."""
    channels: int
    height: int
    width: int
    swap_channels: bool  # the preprocessor reverses the channel order
    mean: Optional[List[float]]
    std: Optional[List[float]]

    def apply(self, pixels: Tensor) -> Tensor:
        """The preprocessor's work on ``pixels`` (in the graph too)."""
        x = pixels.float()
        if self.swap_channels:
            x = x.flip(1)
        if self.mean is not None:
            mean, std = self.normalisation()
            x = (x - mean) / std
        return x

    def normalisation(self):
        return (torch.tensor(self.mean).view(1, -1, 1, 1),
                torch.tensor(self.std).view(1, -1, 1, 1))

    def to_dict(self) -> dict:
        return dict(
            input='pixels', layout='NCHW', dtype='float32',
            shape=['N', self.channels, self.height, self.width],
            channel_order=('the config test pipeline\'s own (the graph '
                           'reverses it, as the data preprocessor does)'
                           if self.swap_channels else
                           'the config test pipeline\'s own'),
            value_range=[0, 255], normalisation_in_graph=dict(
                mean=self.mean, std=self.std) if self.mean else None)


def input_contract(preprocessor: nn.Module, pixels: Tensor) -> InputContract:
    """The contract of ``preprocessor`` (an mmengine data preprocessor)
    for images like ``pixels`` (``C x H x W`` uint8, as the pipeline
    yields), checked against the preprocessor itself: a contract that does
    not reproduce it to float rounding is refused."""
    swap = any(bool(getattr(preprocessor, name, False)) for name in (
        '_channel_conversion', 'channel_conversion', 'to_rgb'))
    normalise = getattr(preprocessor, '_enable_normalize', False)
    mean = std = None
    if normalise:
        mean = preprocessor.mean.flatten().tolist()
        std = preprocessor.std.flatten().tolist()
    channels, height, width = pixels.shape
    contract = InputContract(channels, height, width, swap, mean, std)
    with torch.no_grad():
        want = preprocessor(dict(inputs=[pixels]), False)['inputs']
    got = contract.apply(pixels[None])
    if want.shape != got.shape or not torch.allclose(got, want, atol=1e-4):
        raise ValueError(
            'The export cannot reproduce the config\'s data_preprocessor '
            f'({type(preprocessor).__name__}: it pads, resizes or does more '
            'than reverse channels and normalise), so the graph would not '
            'take what the test pipeline yields.')
    return contract


class _DeployForward(nn.Module):
    """Pixels as the test pipeline yields them -> ``model(x,
    mode='tensor')``, with the preprocessor's work in the graph."""

    def __init__(self, model, contract: InputContract):
        super().__init__()
        self.model, self.swap = model, contract.swap_channels
        self.normalise = contract.mean is not None
        if self.normalise:  # constants of the graph, made before tracing
            mean, std = contract.normalisation()
            self.register_buffer('mean', mean)
            self.register_buffer('std', std)

    def forward(self, pixels):
        x = pixels.flip(1) if self.swap else pixels
        if self.normalise:
            x = (x - self.mean) / self.std
        return self.model(x, mode='tensor')


def export_onnx(model: nn.Module, contract: InputContract, path: str,
                quantized: bool = True, opset: int = 17) -> Dict[str, int]:
    """Write ``model`` (an mmengine model after ``FakeQuantHook``) as ONNX
    taking pixels (``contract``). ``quantized``: QuantizeLinear /
    DequantizeLinear around every quantized layer's input, its weight
    stored as int8 initializers with BatchNorm folded
    (``onnx_graph.make_integer_model``); else the float twin. Returns what
    the integer passes did."""
    if not any(hasattr(m, 'weight_step') for m in model.modules()):
        raise ValueError('export_onnx: the model has no quantized layer '
                         '(was FakeQuantHook applied?).')
    was_training = model.training
    model.eval()
    pixels = torch.zeros(1, contract.channels, contract.height,
                         contract.width)
    for module in model.modules():  # the layers' host flags, read before
        if hasattr(module, 'weight_step'):  # tracing (constants there)
            module._flags()
    try:
        with (qdq_forward if quantized else float_forward)(model):
            torch.onnx.export(
                _DeployForward(model, contract), (pixels, ), path,
                dynamo=False, opset_version=opset, input_names=['pixels'],
                output_names=['outputs'],
                dynamic_axes=dict(pixels={0: 'batch'}, outputs={0: 'batch'}))
    finally:
        model.train(was_training)
    if not quantized:
        return {}
    from .onnx_graph import make_integer_model
    return make_integer_model(path)
