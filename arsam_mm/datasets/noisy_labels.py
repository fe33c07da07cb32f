"""Label noise and fixed-size subsets on top of a classification dataset.

The settings where SAM beats SGD by a wide margin (docs/algorithms.md, "Judging a
fast-SAM method") are noisy labels and small training sets. This module
makes both a dataset option: :func:`corrupt_labels` is the noise itself
(plain numpy), ``NoisyLabelDataset`` (registered in mmpretrain's
``DATASETS``) wraps any mmpretrain classification dataset with it.

Noise types, as the noisy-label literature uses them:

* ``symmetric``: a label is replaced by one of the *other* classes, drawn
  uniformly;
* ``pair`` (asymmetric): class ``c`` becomes class ``(c + 1) % C``.

Exactly ``round(noise_rate * n)`` labels are changed, drawn without
replacement, so the changed fraction is the configured one, not a binomial
draw around it.
"""
import numpy as np

__all__ = ['corrupt_labels', 'NOISE_TYPES']

NOISE_TYPES = ('symmetric', 'pair')


def corrupt_labels(labels: np.ndarray, num_classes: int, noise_rate: float,
                   noise_type: str = 'symmetric',
                   rng: np.random.Generator = None) -> np.ndarray:
    """A noisy copy of ``labels`` (see the module docstring).

    Args:
        labels: integer class labels, shape ``(n,)``.
        num_classes: ``C``.
        noise_rate: fraction of labels to change, in ``[0, 1]``.
        noise_type: ``'symmetric'`` or ``'pair'``.
        rng: the generator to draw from (a fixed one by default).
    """
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(0) if rng is None else rng
    noisy = labels.copy()
    count = int(round(noise_rate * len(labels)))
    flip = rng.choice(len(labels), size=count, replace=False)
    if noise_type == 'symmetric':
        offsets = rng.integers(1, num_classes, size=count)
        noisy[flip] = (labels[flip] + offsets) % num_classes
    else:
        noisy[flip] = (labels[flip] + 1) % num_classes
    return noisy
