from .peer_optim_wrappers import (
                                  AESAMOptimWrapper,
                                  AmpAESAMOptimWrapper,
                                  AmpLookSAMOptimWrapper,
                                  AmpRandomSAMOptimWrapper,
                                  LookSAMOptimWrapper,
                                  RandomSAMOptimWrapper,
)
from .policies import (
                                  AESAMPolicy,
                                  AlwaysSAMPolicy,
                                  ARSAMPolicy,
                                  LookSAMPolicy,
                                  RandomSAMPolicy,
                                  TwoPassPolicy,
)
from .sam_optim_wrapper import (
                                  AmpARSAMOptimWrapper,
                                  AmpSAMOptimWrapper,
                                  ARSAMOptimWrapper,
                                  SAMOptimWrapper,
                                  SharpnessAwareMixin,
)

__all__ = [
    'SAMOptimWrapper', 'ARSAMOptimWrapper', 'AmpSAMOptimWrapper',
    'AmpARSAMOptimWrapper', 'LookSAMOptimWrapper', 'AmpLookSAMOptimWrapper',
    'AESAMOptimWrapper', 'AmpAESAMOptimWrapper', 'RandomSAMOptimWrapper',
    'AmpRandomSAMOptimWrapper', 'SharpnessAwareMixin', 'TwoPassPolicy',
    'AlwaysSAMPolicy', 'ARSAMPolicy', 'LookSAMPolicy', 'AESAMPolicy',
    'RandomSAMPolicy'
]
