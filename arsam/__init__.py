"""arsam: sharpness-aware training (SAM, ASAM, ARSAM, LookSAM, late-phase
SAM) in plain
PyTorch.

``from arsam import ARSAM`` gives a ``torch.optim`` optimizer for any
training loop (``arsam/optim.py``); ``SharpnessAwareEngine`` is the step
itself, which the OpenMMLab wrappers of ``arsam_mm`` drive too. This
package imports torch only: no mmengine, no OpenMMLab package.
"""
from .engine import SharpnessAwareEngine
from .optim import (
    ARSAM,
    ASAM,
    SAM,
    LatePhaseSAM,
    LookSAM,
    SharpnessAwareOptimizer,
)
from .policies import (
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

__all__ = [
    'SAM', 'ASAM', 'ARSAM', 'LookSAM', 'LatePhaseSAM',
    'SharpnessAwareOptimizer', 'SharpnessAwareEngine', 'TwoPassPolicy',
    'AlwaysSAMPolicy', 'ARSAMPolicy', 'LookSAMPolicy', 'AESAMPolicy',
    'RandomSAMPolicy', 'PeriodicSAMPolicy', 'LatePhaseSAMPolicy',
    'RunLengthUnknownError'
]

__version__ = '0.5.1'
