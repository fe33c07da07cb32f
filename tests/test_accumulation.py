"""Gradient accumulation (``accumulative_counts = N``): one SAM-family step
over N micro-batches is that step on their concatenation.

mmpretrain's LeNet-5 (no BatchNorm, no dropout, a mean loss) on the
generated classification set, through a real mmengine Runner: N
micro-batches of size b against one batch of size N*b, same seed, same
sampler order.
"""
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from arsam_mm.runner.embedded import use_embedded_data

_LENET = 'configs/classification/lenet5_fashion-mnist_sgd.py'
_SGD = dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-3)


def _runner(tmp_path, name, wrapper, batch_size, max_iters, root, **kwargs):
    import os.path as osp
    here = osp.dirname(osp.dirname(osp.abspath(__file__)))
    cfg = Config.fromfile(osp.join(here, _LENET))
    use_embedded_data(cfg, root=root, batch_size=batch_size)
    cfg.optim_wrapper = dict(dict(optimizer=_SGD), **wrapper)
    cfg.param_scheduler = []
    cfg.train_cfg = dict(by_epoch=False, max_iters=max_iters,
                         val_interval=10**6)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False,
        interval=kwargs.pop('checkpoint_interval', 10**6))
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.work_dir = str(tmp_path / name)
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    cfg.experiment_name = name
    cfg.merge_from_dict(kwargs)
    return Runner.from_cfg(cfg)


@pytest.fixture(scope='module')
def cls_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp('embedded'))


def _params(runner):
    return {k: v.detach().clone()
            for k, v in runner.model.named_parameters()}


def _assert_close(a, b, rtol=1e-5, atol=1e-6):
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=rtol, atol=atol,
                                   msg=key)


_WRAPPERS = {
    'SAM': dict(type='SAMOptimWrapper', rho=0.05),
    'ARSAM': dict(type='ARSAMOptimWrapper', rho=0.05, window=2,
                  warmup_iters=1, max_reuse=2, budget=0.6, seed=3),
    'LookSAM': dict(type='LookSAMOptimWrapper', rho=0.05, k=2),
    'AE-SAM': dict(type='AESAMOptimWrapper', rho=0.05, lambda2=3.0),
    'MSAM': dict(type='MSAMOptimWrapper', rho=0.3),
}


@pytest.mark.parametrize('name', list(_WRAPPERS))
def test_micro_batches_equal_one_large_batch(tmp_path, cls_root, name):
    wrapper, steps, n = _WRAPPERS[name], 5, 4
    big = _runner(tmp_path, 'big', wrapper, 8, steps, cls_root)
    big.train()
    acc = _runner(tmp_path, 'acc', dict(wrapper, accumulative_counts=n), 2,
                  steps * n, cls_root)
    acc.train()
    _assert_close(_params(big), _params(acc))
    if name != 'MSAM':
        # The same decisions, one per optimizer step; sam_iters counts
        # iterations (micro-batches).
        assert acc.optim_wrapper.sam_iters == n * big.optim_wrapper.sam_iters
    if name == 'ARSAM':
        policy, ref = acc.optim_wrapper.policy, big.optim_wrapper.policy
        assert policy.iteration == ref.iteration == steps
        assert 1 < big.optim_wrapper.sam_iters < steps  # both kinds ran
        _assert_close(dict(enumerate(policy.stored_psf())),
                      dict(enumerate(ref.stored_psf())))


def test_last_short_cycle_follows_mmengines_rule(tmp_path, cls_root):
    # max_iters = 2 with N = 4: the only cycle is 2 micro-batches long and
    # mmengine divides its loss by 2, so it is SAM on their concatenation,
    # second pass included.
    sam = _WRAPPERS['SAM']
    short = _runner(tmp_path, 'short', dict(sam, accumulative_counts=4), 2,
                    2, cls_root)
    short.train()
    big = _runner(tmp_path, 'big', sam, 4, 1, cls_root)
    big.train()
    _assert_close(_params(short), _params(big))
    assert short.optim_wrapper.sam_iters == 2


def test_amp_micro_batches_match_one_large_batch(tmp_path, cls_root):
    wrapper = dict(_WRAPPERS['ARSAM'], type='AmpARSAMOptimWrapper',
                   loss_scale='dynamic')
    big = _runner(tmp_path, 'big', wrapper, 8, 4, cls_root)
    big.train()
    acc = _runner(tmp_path, 'acc', dict(wrapper, accumulative_counts=2), 4,
                  8, cls_root)
    acc.train()
    # bfloat16 autocast on CPU: products rounded per micro-batch.
    _assert_close(_params(big), _params(acc), rtol=2e-2, atol=2e-3)
    assert acc.optim_wrapper.sam_iters == 2 * big.optim_wrapper.sam_iters
    assert acc.optim_wrapper.loss_scaler.get_scale() == (
        big.optim_wrapper.loss_scaler.get_scale())


def _resume(tmp_path, cls_root, stop):
    wrapper = dict(_WRAPPERS['ARSAM'], accumulative_counts=2)
    whole = _runner(tmp_path, f'whole{stop}', wrapper, 2, 12, cls_root,
                    checkpoint_interval=stop)
    whole.train()
    resumed = _runner(tmp_path, f'resumed{stop}', wrapper, 2, 12, cls_root,
                      resume=True,
                      load_from=str(tmp_path / f'whole{stop}' /
                                    f'iter_{stop}.pth'))
    resumed.train()
    return whole, resumed


def test_resume_at_a_cycle_boundary_is_exact(tmp_path, cls_root):
    whole, resumed = _resume(tmp_path, cls_root, 6)
    _assert_close(_params(whole), _params(resumed), rtol=0, atol=0)
    assert resumed.optim_wrapper.sam_iters == whole.optim_wrapper.sam_iters


def test_resume_mid_cycle_keeps_the_cycles_decision(tmp_path, cls_root,
                                                     capsys):
    # Stopped after the first micro-batch of a cycle: the resumed run
    # finishes that cycle with the decision taken at its start (its first
    # micro-batch is lost, mmengine's rule), then continues the same
    # decision stream as the uninterrupted run.
    whole, resumed = _resume(tmp_path, cls_root, 5)
    assert 'middle of an accumulation cycle' in capsys.readouterr().out
    state = torch.load(tmp_path / 'whole5' / 'iter_5.pth',
                       weights_only=False)['optimizer']['sam_state']
    open_cycle = state['cycle_decision']
    assert open_cycle is not None
    a, b = whole.optim_wrapper, resumed.optim_wrapper
    # The lost micro-batch never got its second pass.
    assert b.sam_iters == a.sam_iters - int(open_cycle['two_pass'])
    assert b.policy.iteration == a.policy.iteration == 6
    assert b.policy.window_target == a.policy.window_target
    assert a.cycle.micro == b.cycle.micro == 0
