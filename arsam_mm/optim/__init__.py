from arsam.engine import SharpnessAwareEngine
from arsam.perturbed_params import PerturbedParams
from arsam.policies import (
    AESAMPolicy,
    AlwaysSAMPolicy,
    ARSAMPolicy,
    LatePhaseSAMPolicy,
    LookSAMPolicy,
    PeriodicSAMPolicy,
    RandomSAMPolicy,
    RunLengthUnknownError,
    TwoPassPolicy,
)

from .amp import AmpOnAnyDevice, AmpSharpnessAwareMixin
from .msam_optim_wrapper import MomentumSAMMixin
from .sam_logging import forward_engine_log
from .sam_optim_wrapper import SharpnessAwareMixin
from .wrappers import (
    AESAMOptimWrapper,
    AmpAESAMOptimWrapper,
    AmpARSAMOptimWrapper,
    AmpLatePhaseSAMOptimWrapper,
    AmpLookSAMOptimWrapper,
    AmpMSAMOptimWrapper,
    AmpPeriodicSAMOptimWrapper,
    AmpRandomSAMOptimWrapper,
    AmpSAMOptimWrapper,
    ARSAMOptimWrapper,
    LatePhaseSAMOptimWrapper,
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
    'AmpPeriodicSAMOptimWrapper', 'LatePhaseSAMOptimWrapper',
    'AmpLatePhaseSAMOptimWrapper', 'MSAMOptimWrapper', 'AmpMSAMOptimWrapper',
    'SharpnessAwareMixin', 'AmpSharpnessAwareMixin', 'AmpOnAnyDevice',
    'MomentumSAMMixin', 'PerturbedParams', 'TwoPassPolicy',
    'AlwaysSAMPolicy', 'ARSAMPolicy', 'LookSAMPolicy', 'AESAMPolicy',
    'RandomSAMPolicy', 'PeriodicSAMPolicy', 'LatePhaseSAMPolicy',
    'RunLengthUnknownError',
    'SharpnessAwareEngine'
]

forward_engine_log()
