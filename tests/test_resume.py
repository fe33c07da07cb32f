"""A run stopped and resumed ends with the same weights, bit for bit."""
import torch
from conftest import build_segmentor, make_runner

TOTAL, STOP = 14, 7


def _runner(tmp_path, **kwargs):
    return make_runner(
        tmp_path, build_segmentor(seed=1), kwargs.pop('root'),
        dict(type='ARSAMOptimWrapper', rho=0.05, window=4, warmup_iters=3,
             seed=5,
             optimizer=dict(type='SGD', lr=0.02, momentum=0.9,
                            weight_decay=1e-3)),
        TOTAL,
        param_scheduler=[dict(type='PolyLR', by_epoch=False, begin=0,
                              end=TOTAL, eta_min=1e-4)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=STOP)),
        **kwargs)


def test_resume_is_exact(tmp_path, shapes_root):
    whole = _runner(tmp_path / 'whole', root=shapes_root)
    whole.train()
    wrapper = whole.optim_wrapper
    # The interesting part of the schedule lies after the stop: reuse
    # iterations mixing a PSF stored before it, and new SAM iterations.
    assert 3 < wrapper.sam_iters < TOTAL

    resumed = _runner(tmp_path / 'resumed', root=shapes_root, resume=True,
                      load_from=str(tmp_path / 'whole' / f'iter_{STOP}.pth'))
    resumed.train()
    assert resumed.iter == TOTAL
    assert resumed.optim_wrapper.sam_iters == wrapper.sam_iters
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (resumed.optim_wrapper.policy.rate == wrapper.policy.rate)
