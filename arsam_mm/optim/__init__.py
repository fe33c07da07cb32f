from .msam_optim_wrapper import AmpMSAMOptimWrapper, MSAMOptimWrapper
from .peer_optim_wrappers import (
                                  AESAMOptimWrapper,
                                  AmpAESAMOptimWrapper,
                                  AmpLookSAMOptimWrapper,
                                  AmpPeriodicSAMOptimWrapper,
                                  AmpRandomSAMOptimWrapper,
                                  LookSAMOptimWrapper,
                                  PeriodicSAMOptimWrapper,
                                  RandomSAMOptimWrapper,
)
from .policies import (
                                  AESAMPolicy,
                                  AlwaysSAMPolicy,
                                  ARSAMPolicy,
                                  LookSAMPolicy,
                                  PeriodicSAMPolicy,
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
    'RandomSAMPolicy', 'PeriodicSAMOptimWrapper', 'AmpPeriodicSAMOptimWrapper',
    'PeriodicSAMPolicy', 'MSAMOptimWrapper', 'AmpMSAMOptimWrapper'
]
