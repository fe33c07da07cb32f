"""Which layers of a model become fake-quantized, at how many bits, and the
swap itself (in place: same module and Parameter objects)."""
import re
from typing import List, Optional, Sequence

from torch import nn

from .modules import quantize_module

__all__ = ['OUTPUT_LAYERS', 'quantized_layers', 'quantize_model']

#: The output layers of the OpenMMLab heads (mmseg, mmpose, mmpretrain).
OUTPUT_LAYERS = (r'(^|\.)conv_seg$', r'(^|\.)final_layer$',
                 r'(^|\.)mlp_head_[xy]$', r'^head\.fc$')


def quantized_layers(model: nn.Module) -> List[nn.Module]:
    """The layers of ``model`` that are quantized already."""
    return [m for m in model.modules() if hasattr(m, 'weight_step')]


def quantize_model(model: nn.Module, types: tuple,
                   skip: Sequence['re.Pattern'], w_bits: int,
                   a_bits: Optional[int], first_last_bits: Optional[int],
                   output_layers: Sequence['re.Pattern']) -> bool:
    """Swap the layers of ``types`` whose names no pattern of ``skip``
    matches; the first layer and the layers ``output_layers`` match (the
    last layer when none does) get ``first_last_bits`` (None: left in full
    precision). Returns False when no layer matched."""
    layers = [(name, m) for name, m in model.named_modules()
              if type(m) in types and not any(r.search(name) for r in skip)]
    if not layers:
        return False
    outputs = {n for n, _ in layers
               if any(r.search(n) for r in output_layers)}
    ends = {layers[0][0]} | (outputs or {layers[-1][0]})
    for name, module in layers:
        bits = (w_bits, a_bits)
        if name in ends:
            if first_last_bits is None:
                continue
            bits = (first_last_bits,
                    first_last_bits if a_bits is not None else None)
        quantize_module(module, *bits)
    return True
