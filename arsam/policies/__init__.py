from .arsam import ARSAMPolicy
from .base import (
    AlwaysSAMPolicy,
    TwoPassPolicy,
    build_policy,
    policy_argument_names,
)
from .budget import RunLengthUnknownError, SAMBudget
from .late_phase import LatePhaseSAMPolicy
from .peers import AESAMPolicy, LookSAMPolicy, PeriodicSAMPolicy, RandomSAMPolicy

__all__ = [
    'TwoPassPolicy', 'AlwaysSAMPolicy', 'ARSAMPolicy', 'LookSAMPolicy',
    'AESAMPolicy', 'RandomSAMPolicy', 'PeriodicSAMPolicy',
    'LatePhaseSAMPolicy', 'SAMBudget',
    'RunLengthUnknownError', 'build_policy', 'policy_argument_names'
]
