"""What an ARSAM SAM iteration costs beyond a SAM iteration, counted.

Timings do not belong in tests; memory traffic can be counted. A dispatch
mode sums, over every aten call of one training iteration, the elements of
its tensor arguments. SAM and ARSAM run the same forwards and backwards, so
the difference is ARSAM's own traffic over the gradients, in units of the
trainable parameter count P. Storing the last PSF (``psf_average=1``):
copying ``g`` into the PSF buffer (2P) and forming ``g - g_s`` there (2P).
A running mean (the default): a copy of ``g`` (P), ``g - g_s`` in it (2P),
the ``lerp`` into the mean (2P), and under AMP the mean brought to the
step's loss scale (P). Its norm pass over the PSF stands in for the glue's
finiteness pass over ``g_s``. Under AMP, too, no pass may unscale the new
PSF or recompute norms the glue already has.
"""
import copy

import pytest
import torch
from conftest import build_segmentor
from mmengine.optim import build_optim_wrapper
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class _ElementsRead(TorchDispatchMode):

    def __init__(self):
        super().__init__()
        self.elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        leaves, _ = tree_flatten((args, kwargs or {}))
        self.elements += sum(
            t.numel() for t in leaves if isinstance(t, torch.Tensor))
        return func(*args, **(kwargs or {}))


def _elements_per_iteration(wrapper_type, batch, **kwargs):
    model = build_segmentor()
    wrapper = build_optim_wrapper(model, dict(
        type=wrapper_type, optimizer=dict(type='SGD', lr=0.01,
                                          momentum=0.9), **kwargs))
    model.train_step(copy.deepcopy(batch), wrapper)  # buffers exist now
    counter = _ElementsRead()
    with counter:
        model.train_step(copy.deepcopy(batch), wrapper)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return counter.elements, params, wrapper


@pytest.mark.parametrize('amp', [False, True], ids=['fp32', 'amp'])
@pytest.mark.parametrize('psf_average, bound', [(1.0, 4), (0.25, 5)],
                         ids=['last_psf', 'mean_psf'])
def test_arsam_sam_iteration_reads_at_most_4P_to_6P_more_than_sam(
        seg_batches, amp, psf_average, bound):
    prefix = 'Amp' if amp else ''
    sam, params, _ = _elements_per_iteration(f'{prefix}SAMOptimWrapper',
                                             seg_batches[0])
    arsam, _, wrapper = _elements_per_iteration(
        f'{prefix}ARSAMOptimWrapper', seg_batches[0], warmup_iters=10**9,
        schedule='paper', psf_average=psf_average)  # every iteration SAM
    assert wrapper.sam_iters == wrapper.total_iters == 2
    extra = (arsam - sam) / params
    if amp and psf_average < 1:
        bound += 1  # the mean to the step's loss scale
    assert bound - 0.5 < extra <= bound + 0.5, extra
