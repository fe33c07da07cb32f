"""MSAM's pass (Becker, Altrock, Risse, "Momentum-SAM: Sharpness Aware
Minimization without Computational Overhead", arXiv 2401.12033).

One forward/backward per iteration, at ``w - rho * v / ||v||`` where ``v``
is the base optimizer's momentum; the gradient there drives the ordinary
step from ``w``. Which parameters move and by how much is SAM's
(``perturbed_params.py``); a driver moves before the forward and puts
``w`` back (``PerturbedParams.restore``) right after the backward.
"""
from .perturbed_params import PerturbedParams

__all__ = ['MOMENTUM_KEYS', 'move_against_momentum']

#: Where the base optimizer keeps its momentum: SGD, Adam/AdamW.
MOMENTUM_KEYS = ('momentum_buffer', 'exp_avg')


def move_against_momentum(perturbed: PerturbedParams, optimizer,
                          eps: float) -> None:
    """``w -= rho v/||v||`` for the perturbed parameters (per-group
    ``rho``); none before the optimizer's first step, when there is no
    momentum yet: the pass then runs at ``w``."""
    states = (optimizer.state.get(p, {}) for p in perturbed.perturbed)
    momenta = [next((s[k] for k in MOMENTUM_KEYS if k in s), None)
               for s in states]
    if any(m is not None for m in momenta):
        perturbed.move_along(optimizer, momenta, sign=-1.0, eps=eps)
