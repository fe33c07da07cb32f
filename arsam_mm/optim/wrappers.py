"""Every optimizer wrapper arsam_mm registers, in mmengine's root
``OPTIM_WRAPPERS`` (so a type is visible under every downstream
``default_scope``: mmseg, mmpose, mmpretrain).

Each is one line of a config, e.g. ``dict(type='ARSAMOptimWrapper',
rho=0.05, optimizer=dict(type='SGD', lr=0.01, momentum=0.9))``, and each
has an ``Amp`` twin that ``tools/train.py --amp`` switches to. A wrapper
with a ``policy_cls`` takes that policy's arguments next to those of
:class:`~arsam_mm.optim.sam_optim_wrapper.SharpnessAwareMixin` and of
mmengine's ``OptimWrapper``.
"""
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from arsam.policies import (
    AESAMPolicy,
    ARSAMPolicy,
    LatePhaseSAMPolicy,
    LookSAMPolicy,
    PeriodicSAMPolicy,
    RandomSAMPolicy,
)

from .amp import AmpOnAnyDevice, AmpSharpnessAwareMixin
from .msam_optim_wrapper import MomentumSAMMixin
from .sam_optim_wrapper import SharpnessAwareMixin

__all__ = [
    'SAMOptimWrapper', 'AmpSAMOptimWrapper', 'ARSAMOptimWrapper',
    'AmpARSAMOptimWrapper', 'LookSAMOptimWrapper', 'AmpLookSAMOptimWrapper',
    'AESAMOptimWrapper', 'AmpAESAMOptimWrapper', 'RandomSAMOptimWrapper',
    'AmpRandomSAMOptimWrapper', 'PeriodicSAMOptimWrapper',
    'AmpPeriodicSAMOptimWrapper', 'LatePhaseSAMOptimWrapper',
    'AmpLatePhaseSAMOptimWrapper', 'MSAMOptimWrapper', 'AmpMSAMOptimWrapper'
]


@OPTIM_WRAPPERS.register_module()
class SAMOptimWrapper(SharpnessAwareMixin, OptimWrapper):
    """SAM (Foret et al., ICLR 2021), or ASAM with ``adaptive=True``.

    Examples:
        >>> optim_wrapper = dict(
        ...     type='SAMOptimWrapper', rho=0.05,
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
    """


@OPTIM_WRAPPERS.register_module()
class AmpSAMOptimWrapper(AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`SAMOptimWrapper` with mixed precision (``AmpOptimWrapper``
    arguments ``loss_scale`` and ``dtype`` accepted)."""


@OPTIM_WRAPPERS.register_module()
class ARSAMOptimWrapper(SharpnessAwareMixin, OptimWrapper):
    """ARSAM (Deng & Pang, arXiv 2510.03763): SAM on an adaptively placed
    share of the iterations (``budget``, 0.2 by default: 0.6x SAM's
    passes), the stored PSF mixed into the others.

    Takes every argument of :class:`SharpnessAwareMixin` and of
    :class:`~arsam.policies.ARSAMPolicy`.

    Examples:
        >>> optim_wrapper = dict(type='ARSAMOptimWrapper', rho=0.05)
        >>> optim_wrapper = dict(type='ARSAMOptimWrapper', rho=0.05,
        ...                      budget=0.35)
    """

    policy_cls = ARSAMPolicy


@OPTIM_WRAPPERS.register_module()
class AmpARSAMOptimWrapper(AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`ARSAMOptimWrapper` with mixed precision."""

    policy_cls = ARSAMPolicy


@OPTIM_WRAPPERS.register_module()
class LookSAMOptimWrapper(SharpnessAwareMixin, OptimWrapper):
    """LookSAM (Liu et al., CVPR 2022): SAM every ``k`` iterations, the
    orthogonal part of the SAM gradient reused with weight ``alpha``."""

    policy_cls = LookSAMPolicy


@OPTIM_WRAPPERS.register_module()
class AmpLookSAMOptimWrapper(AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`LookSAMOptimWrapper` with mixed precision."""

    policy_cls = LookSAMPolicy


@OPTIM_WRAPPERS.register_module()
class AESAMOptimWrapper(SharpnessAwareMixin, OptimWrapper):
    """AE-SAM (Jiang et al., ICLR 2023): SAM when the squared gradient norm
    is high relative to its running statistics (``delta``, ``lambda1``,
    ``lambda2``)."""

    policy_cls = AESAMPolicy


@OPTIM_WRAPPERS.register_module()
class AmpAESAMOptimWrapper(AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`AESAMOptimWrapper` with mixed precision."""

    policy_cls = AESAMPolicy


@OPTIM_WRAPPERS.register_module()
class RandomSAMOptimWrapper(SharpnessAwareMixin, OptimWrapper):
    """RST (Zhao et al., 2022): SAM with probability ``p`` (to ``p_end``)."""

    policy_cls = RandomSAMPolicy


@OPTIM_WRAPPERS.register_module()
class AmpRandomSAMOptimWrapper(AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`RandomSAMOptimWrapper` with mixed precision."""

    policy_cls = RandomSAMPolicy


@OPTIM_WRAPPERS.register_module()
class PeriodicSAMOptimWrapper(SharpnessAwareMixin, OptimWrapper):
    """Periodic SAM: SAM every ``k``-th iteration, plain steps between."""

    policy_cls = PeriodicSAMPolicy


@OPTIM_WRAPPERS.register_module()
class AmpPeriodicSAMOptimWrapper(AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`PeriodicSAMOptimWrapper` with mixed precision."""

    policy_cls = PeriodicSAMPolicy


@OPTIM_WRAPPERS.register_module()
class LatePhaseSAMOptimWrapper(SharpnessAwareMixin, OptimWrapper):
    """Late-phase SAM (Zhou et al., ICLR 2025): the base optimizer's plain
    steps, then SAM on the last ``share`` of the run (0.2: 0.6x SAM's
    passes).

    Examples:
        >>> optim_wrapper = dict(type='LatePhaseSAMOptimWrapper', rho=0.05,
        ...                      share=0.2)
    """

    policy_cls = LatePhaseSAMPolicy


@OPTIM_WRAPPERS.register_module()
class AmpLatePhaseSAMOptimWrapper(AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`LatePhaseSAMOptimWrapper` with mixed precision."""

    policy_cls = LatePhaseSAMPolicy


@OPTIM_WRAPPERS.register_module()
class MSAMOptimWrapper(MomentumSAMMixin, OptimWrapper):
    """MSAM (Becker et al., arXiv 2401.12033): one pass at
    ``w - rho * v / ||v||``, SGD's cost.

    Examples:
        >>> optim_wrapper = dict(
        ...     type='MSAMOptimWrapper', rho=0.3,
        ...     optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
    """


@OPTIM_WRAPPERS.register_module()
class AmpMSAMOptimWrapper(MomentumSAMMixin, AmpOnAnyDevice):
    """:class:`MSAMOptimWrapper` with mixed precision."""
