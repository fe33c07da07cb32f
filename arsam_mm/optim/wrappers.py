"""Every optimizer wrapper arsam_mm registers, in mmengine's root
``OPTIM_WRAPPERS`` (so a type is visible under every downstream
``default_scope``: mmseg, mmpose, mmpretrain).

Each is one line of a config, e.g. ``dict(type='ARSAMOptimWrapper',
rho=0.05, optimizer=dict(type='SGD', lr=0.01, momentum=0.9))``, and each
has an ``Amp`` twin that ``tools/train.py --amp`` switches to. A policy
wrapper takes the arguments of its policy next to those of
:class:`~arsam_mm.optim.sam_optim_wrapper.SharpnessAwareMixin` and of
mmengine's ``OptimWrapper``.
"""
import inspect

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
    'AmpLatePhaseSAMOptimWrapper', 'MSAMOptimWrapper', 'AmpMSAMOptimWrapper',
    'policy_arguments'
]


def policy_arguments(policy_cls):
    """A base class that builds ``policy_cls`` from the wrapper's arguments.

    The constructor arguments of ``policy_cls`` become arguments of the
    wrapper (so a config sets them next to ``rho``); the rest goes on to
    :class:`SharpnessAwareMixin` and mmengine's wrapper.
    """
    names = tuple(inspect.signature(policy_cls).parameters)
    policy_cls_ = policy_cls

    class PolicyArguments:
        policy_argument_names = names
        policy_cls = policy_cls_
        removed_arguments = getattr(policy_cls, 'removed_arguments', {})

        def __init__(self, optimizer, **kwargs):
            policy_kwargs = {k: kwargs.pop(k) for k in names if k in kwargs}
            super().__init__(
                optimizer=optimizer, policy=policy_cls(**policy_kwargs),
                **kwargs)

    PolicyArguments.__name__ = f'{policy_cls.__name__}Arguments'
    return PolicyArguments


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
class ARSAMOptimWrapper(policy_arguments(ARSAMPolicy), SharpnessAwareMixin,
                        OptimWrapper):
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


@OPTIM_WRAPPERS.register_module()
class AmpARSAMOptimWrapper(policy_arguments(ARSAMPolicy),
                           AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`ARSAMOptimWrapper` with mixed precision."""


@OPTIM_WRAPPERS.register_module()
class LookSAMOptimWrapper(policy_arguments(LookSAMPolicy), SharpnessAwareMixin,
                          OptimWrapper):
    """LookSAM (Liu et al., CVPR 2022): SAM every ``k`` iterations, the
    orthogonal part of the SAM gradient reused with weight ``alpha``."""


@OPTIM_WRAPPERS.register_module()
class AmpLookSAMOptimWrapper(policy_arguments(LookSAMPolicy),
                             AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`LookSAMOptimWrapper` with mixed precision."""


@OPTIM_WRAPPERS.register_module()
class AESAMOptimWrapper(policy_arguments(AESAMPolicy), SharpnessAwareMixin,
                        OptimWrapper):
    """AE-SAM (Jiang et al., ICLR 2023): SAM when the squared gradient norm
    is high relative to its running statistics (``delta``, ``lambda1``,
    ``lambda2``)."""


@OPTIM_WRAPPERS.register_module()
class AmpAESAMOptimWrapper(policy_arguments(AESAMPolicy),
                           AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`AESAMOptimWrapper` with mixed precision."""


@OPTIM_WRAPPERS.register_module()
class RandomSAMOptimWrapper(policy_arguments(RandomSAMPolicy),
                            SharpnessAwareMixin, OptimWrapper):
    """RST (Zhao et al., 2022): SAM with probability ``p`` (to ``p_end``)."""


@OPTIM_WRAPPERS.register_module()
class AmpRandomSAMOptimWrapper(policy_arguments(RandomSAMPolicy),
                               AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`RandomSAMOptimWrapper` with mixed precision."""


@OPTIM_WRAPPERS.register_module()
class PeriodicSAMOptimWrapper(policy_arguments(PeriodicSAMPolicy),
                              SharpnessAwareMixin, OptimWrapper):
    """Periodic SAM: SAM every ``k``-th iteration, plain steps between."""


@OPTIM_WRAPPERS.register_module()
class AmpPeriodicSAMOptimWrapper(policy_arguments(PeriodicSAMPolicy),
                                 AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`PeriodicSAMOptimWrapper` with mixed precision."""


@OPTIM_WRAPPERS.register_module()
class LatePhaseSAMOptimWrapper(policy_arguments(LatePhaseSAMPolicy),
                               SharpnessAwareMixin, OptimWrapper):
    """Late-phase SAM (Zhou et al., ICLR 2025): the base optimizer's plain
    steps, then SAM on the last ``share`` of the run (0.2: 0.6x SAM's
    passes).

    Examples:
        >>> optim_wrapper = dict(type='LatePhaseSAMOptimWrapper', rho=0.05,
        ...                      share=0.2)
    """


@OPTIM_WRAPPERS.register_module()
class AmpLatePhaseSAMOptimWrapper(policy_arguments(LatePhaseSAMPolicy),
                                  AmpSharpnessAwareMixin, AmpOnAnyDevice):
    """:class:`LatePhaseSAMOptimWrapper` with mixed precision."""


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
