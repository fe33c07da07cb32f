from .sam_trace_hook import SAMTraceHook

__all__ = ['SAMTraceHook']
