"""A run stopped and resumed ends with the same weights, bit for bit.

Checkpoints are read back through arsam_mm's weights-only loader, so these
runs also check that it accepts everything the wrappers write.
"""
from pathlib import Path

import pytest
import torch
from conftest import build_segmentor, make_runner

TOTAL, STOP = 14, 7

_ARSAM = dict(type='ARSAMOptimWrapper', window=4, warmup_iters=3, budget=0.5,
              seed=5)


def _runner(tmp_path, wrapper, **kwargs):
    return make_runner(
        tmp_path, build_segmentor(seed=1), kwargs.pop('root'),
        dict(dict(rho=0.05,
                  optimizer=dict(type='SGD', lr=0.02, momentum=0.9,
                                 weight_decay=1e-3)), **wrapper),
        TOTAL,
        param_scheduler=[dict(type='PolyLR', by_epoch=False, begin=0,
                              end=TOTAL, eta_min=1e-4)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=STOP)),
        **kwargs)


def _stop_and_resume(tmp_path, root, wrapper):
    whole = _runner(tmp_path / 'whole', wrapper, root=root)
    whole.train()
    resumed = _runner(tmp_path / 'resumed', wrapper, root=root, resume=True,
                      load_from=str(tmp_path / 'whole' / f'iter_{STOP}.pth'))
    resumed.train()
    assert resumed.iter == TOTAL
    assert resumed.optim_wrapper.sam_iters == whole.optim_wrapper.sam_iters
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    return whole, resumed


def test_resume_is_exact(tmp_path, shapes_root):
    whole, resumed = _stop_and_resume(tmp_path, shapes_root, _ARSAM)
    wrapper = whole.optim_wrapper
    # The interesting part of the schedule lies after the stop: reuse
    # iterations mixing a PSF stored before it, and new SAM iterations.
    assert 3 < wrapper.sam_iters < TOTAL
    assert (resumed.optim_wrapper.policy.window_target == wrapper.policy.window_target)


# ARSAM's exact resume (test_resume_is_exact) stays in the fast tier.
@pytest.mark.slow
@pytest.mark.parametrize('wrapper', [
    dict(type='SAMOptimWrapper', adaptive=True, rho=0.5),
    dict(type='LookSAMOptimWrapper', k=3),
    dict(type='AESAMOptimWrapper'),
    dict(type='RandomSAMOptimWrapper', p=0.4, seed=3),
    dict(_ARSAM, type='AmpARSAMOptimWrapper', loss_scale='dynamic'),
    dict(type='LatePhaseSAMOptimWrapper', share=0.6),  # SAM from iter 6
], ids=lambda w: w['type'])
def test_every_wrapper_family_resumes_exactly(tmp_path, shapes_root,
                                              wrapper):
    _stop_and_resume(tmp_path, shapes_root, wrapper)


RELEASE_0_1 = Path(__file__).parent / 'data' / 'release_0.1'


@pytest.mark.parametrize('name, wrapper, atol', [
    ('arsam', _ARSAM, 1e-5),
    ('amp_arsam', dict(_ARSAM, type='AmpARSAMOptimWrapper',
                       loss_scale='dynamic'), 1e-2),
])
def test_a_checkpoint_of_release_0_1_resumes_exactly(tmp_path, shapes_root,
                                                     name, wrapper, atol):
    """``iter_7.pth`` and the weights at iteration 14 were written by
    release 0.1 (before the engine split and the renames: its ARSAM state
    says ``psf`` and ``rate``) with this file's ``_runner``. Resumed by
    this release, the run takes the same SAM iterations and ends on
    release 0.1's weights: bit for bit on the CPU that wrote them, within
    float rounding on another (measured on an AMD EPYC: 5e-7 in fp32,
    5e-3 under bfloat16 autocast; a wrong random stream moves them by
    2e-2). ``test_migrations.py`` checks the translated state itself."""
    # psf_average=1: release 0.1's reuse rule (the default changed in 0.3).
    resumed = _runner(tmp_path, dict(wrapper, psf_average=1.0),
                      root=shapes_root, resume=True,
                      load_from=str(RELEASE_0_1 / f'{name}_iter_{STOP}.pth'))
    resumed.train()
    assert resumed.iter == TOTAL
    assert 3 < resumed.optim_wrapper.sam_iters < TOTAL
    final = torch.load(RELEASE_0_1 / f'{name}_final_weights.pth',
                       weights_only=True)
    for key, value in resumed.model.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, final[key], atol=atol,
                                       rtol=0, msg=key)
        else:
            assert torch.equal(value, final[key]), key
