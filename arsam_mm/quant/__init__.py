from .lsq import lsq_fake_quant, lsq_init_step, lsq_to_int, quant_range
from .modules import QUANT_TYPES, QuantConv2d, QuantLinear, quantize_module

__all__ = [
    'quant_range', 'lsq_init_step', 'lsq_fake_quant', 'lsq_to_int',
    'QuantConv2d', 'QuantLinear', 'quantize_module', 'QUANT_TYPES'
]
