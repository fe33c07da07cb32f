from .fake_quant_hook import FakeQuantHook
from .sam_run_info_hook import SAMRunInfoHook
from .sam_trace_hook import SAMTraceHook

__all__ = ['SAMTraceHook', 'FakeQuantHook', 'SAMRunInfoHook']
