from .amp import AmpOnAnyDevice, AmpSharpnessAwareMixin
from .msam_optim_wrapper import MomentumSAMMixin
from .perturbed_params import PerturbedParams
from .policies import (
    AESAMPolicy,
    AlwaysSAMPolicy,
    ARSAMPolicy,
    LookSAMPolicy,
    PeriodicSAMPolicy,
    RandomSAMPolicy,
    RunLengthUnknownError,
    TwoPassPolicy,
)
from .sam_optim_wrapper import SharpnessAwareMixin
from .wrappers import (
    AESAMOptimWrapper,
    AmpAESAMOptimWrapper,
    AmpARSAMOptimWrapper,
    AmpLookSAMOptimWrapper,
    AmpMSAMOptimWrapper,
    AmpPeriodicSAMOptimWrapper,
    AmpRandomSAMOptimWrapper,
    AmpSAMOptimWrapper,
    ARSAMOptimWrapper,
    LookSAMOptimWrapper,
    MSAMOptimWrapper,
    PeriodicSAMOptimWrapper,
    RandomSAMOptimWrapper,
    SAMOptimWrapper,
)

__all__ = [
    'SAMOptimWrapper', 'ARSAMOptimWrapper', 'AmpSAMOptimWrapper',
    'AmpARSAMOptimWrapper', 'LookSAMOptimWrapper', 'AmpLookSAMOptimWrapper',
    'AESAMOptimWrapper', 'AmpAESAMOptimWrapper', 'RandomSAMOptimWrapper',
    'AmpRandomSAMOptimWrapper', 'PeriodicSAMOptimWrapper',
    'AmpPeriodicSAMOptimWrapper', 'MSAMOptimWrapper', 'AmpMSAMOptimWrapper',
    'SharpnessAwareMixin', 'AmpSharpnessAwareMixin', 'AmpOnAnyDevice',
    'MomentumSAMMixin', 'PerturbedParams', 'TwoPassPolicy',
    'AlwaysSAMPolicy', 'ARSAMPolicy', 'LookSAMPolicy', 'AESAMPolicy',
    'RandomSAMPolicy', 'PeriodicSAMPolicy', 'RunLengthUnknownError'
]
