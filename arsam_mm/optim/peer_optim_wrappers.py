"""The peer fast-SAM methods as optimizer wrappers: the same glue as
:class:`~arsam_mm.optim.SAMOptimWrapper`, another policy
(``policies/peers.py``). Baselines for ``tools/benchmark.py``.

Examples:
    >>> optim_wrapper = dict(type='LookSAMOptimWrapper', rho=0.05, k=5)
    >>> optim_wrapper = dict(type='AESAMOptimWrapper', rho=0.05)
    >>> optim_wrapper = dict(type='RandomSAMOptimWrapper', rho=0.05, p=0.5)
    >>> optim_wrapper = dict(type='PeriodicSAMOptimWrapper', rho=0.05, k=4)
"""
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from .policies import AESAMPolicy, LookSAMPolicy, PeriodicSAMPolicy, RandomSAMPolicy
from .sam_optim_wrapper import (
    AmpOnAnyDevice,
    AmpSharpnessAwareMixin,
    SharpnessAwareMixin,
    policy_arguments,
)

__all__ = [
    'LookSAMOptimWrapper', 'AmpLookSAMOptimWrapper', 'AESAMOptimWrapper',
    'AmpAESAMOptimWrapper', 'RandomSAMOptimWrapper',
    'AmpRandomSAMOptimWrapper', 'PeriodicSAMOptimWrapper',
    'AmpPeriodicSAMOptimWrapper'
]


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
