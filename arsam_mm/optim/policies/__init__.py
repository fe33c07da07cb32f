from .arsam import ARSAMPolicy
from .base import AlwaysSAMPolicy, TwoPassPolicy
from .peers import AESAMPolicy, LookSAMPolicy, PeriodicSAMPolicy, RandomSAMPolicy

__all__ = [
    'TwoPassPolicy', 'AlwaysSAMPolicy', 'ARSAMPolicy', 'LookSAMPolicy',
    'AESAMPolicy', 'RandomSAMPolicy', 'PeriodicSAMPolicy'
]
