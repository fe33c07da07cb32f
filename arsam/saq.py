"""SAQ's path (Liu et al., "Sharpness-Aware Quantization for Deep Neural
Networks", 2021): ``FakeQuantHook(perturb='quantized')`` layers are
perturbed at ``Q(w)`` along ``dL/dQ(w)`` instead of at their latent
weights (``perturbed_params.py`` routes them). A driver records
``dL/dQ(w)`` during a first pass that may be followed by a second; the
engine drops the recording after every step.
"""
from .perturbed_params import PerturbedParams

__all__ = ['record_quantized_grads', 'drop_quantized_grads']


def record_quantized_grads(perturbed: PerturbedParams, on: bool) -> None:
    """Whether the SAQ layers keep ``dL/dQ(w)`` of the pass to come."""
    perturbed.set_on_saq_layers('record_quantized_weight_grad', on)


def drop_quantized_grads(perturbed: PerturbedParams) -> None:
    """Forget the recorded ``dL/dQ(w)`` (the step is over)."""
    perturbed.set_on_saq_layers('quantized_weight_grad', None)
