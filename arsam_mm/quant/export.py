"""Integer export of a fake-quantized model: weights as integers with their
per-channel step sizes, and the model size at the trained bit widths."""
from typing import Dict

import torch
from torch import nn

from .lsq import lsq_to_int, quant_range

__all__ = ['export_integer_weights']


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
