from .arsam import ARSAMPolicy
from .base import AlwaysSAMPolicy, TwoPassPolicy

__all__ = ['TwoPassPolicy', 'AlwaysSAMPolicy', 'ARSAMPolicy']
