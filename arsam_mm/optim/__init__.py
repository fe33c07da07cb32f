from .policies import AlwaysSAMPolicy, ARSAMPolicy, TwoPassPolicy
from .sam_optim_wrapper import (
                                AmpARSAMOptimWrapper,
                                AmpSAMOptimWrapper,
                                ARSAMOptimWrapper,
                                SAMOptimWrapper,
                                SharpnessAwareMixin,
)

__all__ = [
    'SAMOptimWrapper', 'ARSAMOptimWrapper', 'AmpSAMOptimWrapper',
    'AmpARSAMOptimWrapper', 'SharpnessAwareMixin', 'TwoPassPolicy',
    'AlwaysSAMPolicy', 'ARSAMPolicy'
]
