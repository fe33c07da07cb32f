"""The mmengine glue: BatchNorm, logging, state, clear errors."""
import copy

import pytest
import torch
from conftest import build_segmentor, make_runner
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from torch.nn.modules.batchnorm import _BatchNorm

from arsam_mm.runner import check_config, switch_to_amp


def _bn_buffers(model):
    return {n: b.clone() for n, b in model.named_buffers()
            if 'running' in n or 'num_batches' in n}


def test_second_pass_leaves_batchnorm_stats_alone(seg_batches):
    model = build_segmentor()
    plain = copy.deepcopy(model)
    wrapper = build_optim_wrapper(model, dict(
        type='SAMOptimWrapper', rho=0.5, optimizer=dict(type='SGD', lr=0.0)))
    seen = []
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.register_forward_hook(lambda *a: seen.append(1))
    model.train_step(copy.deepcopy(seg_batches[0]), wrapper)
    n_bn = sum(isinstance(m, _BatchNorm) for m in model.modules())
    assert len(seen) == 2 * n_bn  # both passes ran through every BN

    # Reference: a single training-mode forward (the first pass only).
    plain.train()
    with torch.no_grad():
        data = plain.data_preprocessor(copy.deepcopy(seg_batches[0]), True)
        plain(**data, mode='loss')
    got, want = _bn_buffers(model), _bn_buffers(plain)
    for name in want:
        assert torch.equal(got[name], want[name]), name
    assert all(m.track_running_stats for m in model.modules()
               if isinstance(m, _BatchNorm))


def test_logged_scalars_reach_the_message_hub(tmp_path, shapes_root):
    runner = make_runner(
        tmp_path, build_segmentor(), shapes_root,
        dict(type='ARSAMOptimWrapper', rho=0.05, window=4, warmup_iters=3,
             budget=0.5, optimizer=dict(type='SGD', lr=0.01)), 12,
        log_level='INFO', custom_hooks=[dict(type='SAMRunInfoHook')])
    runner.train()
    hub = runner.message_hub
    wrapper = runner.optim_wrapper
    rate = hub.get_scalar('train/sam_rate').current()
    assert rate == pytest.approx(wrapper.sam_iters / 12)
    assert wrapper.sam_iters == 6  # the budget: 0.5 of 12, warm-up included
    assert hub.get_scalar('train/psf_norm').current() > 0
    assert 'train/sharpness' in hub.log_scalars
    log = (tmp_path / runner.timestamp / f'{runner.timestamp}.log').read_text()
    assert 'sam_rate' in log and 'psf_norm' in log
    # What the scalars mean, at the first SAM step; the cost, at the end (any
    # script); the summary line of SAMRunInfoHook (upstream scripts too).
    assert "arsam_rate: ARSAM's target share for the current window" in log
    assert 'psf_ratio: ||PSF||/||g|| at the last SAM iteration' in log
    assert ('6 of 12 training iterations took two passes '
            "(sam_rate=0.500, 0.75x SAM's" in log)
    assert 'arsam_mm summary: ' in log and 'sam_rate=0.5' in log


def test_optimizer_state_keeps_its_own_key(seg_batches):
    model = build_segmentor()
    wrapper = build_optim_wrapper(model, dict(
        type='ARSAMOptimWrapper', warmup_iters=1,
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    wrapper.initialize_count_status(model, 0, 10)  # as a Runner does
    model.train_step(copy.deepcopy(seg_batches[0]), wrapper)
    state = wrapper.state_dict()
    assert set(state) >= {'state', 'param_groups', 'sam_state'}
    sam = state['sam_state']
    assert len(sam['policy']['reuse']['scaled_psf']) == len(
        list(model.parameters()))
    assert sam['sam_iters'] == 1 and 'generator' in sam['policy']


@pytest.mark.parametrize('kwargs, key', [
    (dict(rho=0.0), 'rho'),
    (dict(warmup_iters=3, warmup_epochs=1), 'warmup_epochs'),
    (dict(beta=1.5), 'beta'),
    (dict(exclude='.*'), 'exclude'),
])
def test_bad_settings_name_the_key(seg_batches, kwargs, key):
    model = build_segmentor()
    with pytest.raises(ValueError, match=key):
        wrapper = build_optim_wrapper(model, dict(
            type='ARSAMOptimWrapper', optimizer=dict(type='SGD', lr=0.01),
            **kwargs))
        model.train_step(copy.deepcopy(seg_batches[0]), wrapper)


def test_update_params_without_context_is_refused():
    model = build_segmentor()
    wrapper = build_optim_wrapper(model, dict(
        type='SAMOptimWrapper', optimizer=dict(type='SGD', lr=0.01)))
    loss = sum(p.sum() for p in model.parameters())
    with pytest.raises(RuntimeError, match='optim_context'):
        wrapper.update_params(loss)


@pytest.mark.parametrize('type_name', ['SAMOptimWrapper', 'MSAMOptimWrapper'])
def test_compile_is_refused_by_the_runner(tmp_path, shapes_root, type_name):
    """MSAM runs on the same engine glue, with the same refusals; the
    Runner and tools/train.py's config check say it in the same words."""
    runner = make_runner(
        tmp_path, build_segmentor(), shapes_root,
        dict(type=type_name, optimizer=dict(type='SGD', lr=0.01,
                                            momentum=0.9)), 2,
        cfg=dict(compile=True))
    with pytest.raises(ValueError) as at_step:
        runner.train()
    with pytest.raises(ValueError) as at_check:
        check_config(Config(dict(optim_wrapper=dict(type=type_name),
                                 compile=True)))
    assert str(at_step.value) == str(at_check.value) == (
        f'compile: {type_name} cannot run inside a torch.compile-d '
        'train_step (it edits weights in place and hooks the data '
        'preprocessor). Set compile=False (--cfg-options compile=False).')


def test_a_wrapper_names_optim_wrapper_for_the_plain_api_s_check():
    """The check test_plain_api.py pins with the class name, from an
    mmengine wrapper: the same words under optim_wrapper."""
    from arsam_mm.optim import SAMOptimWrapper
    model = build_segmentor()
    base = torch.optim.SGD([dict(params=list(model.parameters()), rho=-1.0)],
                           lr=0.1)
    with pytest.raises(ValueError) as error:
        SAMOptimWrapper(optimizer=base)
    assert str(error.value) == (
        'optim_wrapper.rho: param group 0: must be >= 0, got -1.0. '
        'docs/usage.md gives its meaning and default.')


def test_config_checks_name_the_key():
    multi = Config(dict(optim_wrapper=dict(
        constructor='MultiOptimWrapperConstructor',
        generator=dict(type='ARSAMOptimWrapper',
                       optimizer=dict(type='SGD', lr=0.1)),
        discriminator=dict(type='OptimWrapper',
                           optimizer=dict(type='SGD', lr=0.1)))))
    with pytest.raises(ValueError, match='optim_wrapper.generator.type'):
        check_config(multi)
    compiled = Config(dict(optim_wrapper=dict(type='SAMOptimWrapper'),
                           compile=True))
    with pytest.raises(ValueError, match='compile'):
        check_config(compiled)
    fsdp = Config(dict(optim_wrapper=dict(type='ARSAMOptimWrapper'),
                       model_wrapper_cfg=dict(
                           type='MMFullyShardedDataParallel')))
    with pytest.raises(ValueError, match='model_wrapper_cfg.type'):
        check_config(fsdp)
    check_config(Config(dict(optim_wrapper=dict(type='ARSAMOptimWrapper'))))
    # MSAM moves the weights in place too (tools/train.py refused only the
    # two-pass family before the engine split).
    for key, extra in (('compile', dict(compile=True)),
                       ('model_wrapper_cfg.type', dict(model_wrapper_cfg=dict(
                           type='MMFullyShardedDataParallel')))):
        with pytest.raises(ValueError, match=key):
            check_config(Config(dict(optim_wrapper=dict(
                type='MSAMOptimWrapper'), **extra)))


@pytest.mark.parametrize('wrapper, match', [
    (dict(type='ARSAMOptimWrapper', budgte=0.3),
     r'optim_wrapper\.budgte: .*Did you mean budget'),
    (dict(type='ARSAMOptimWrapper', beta=1.5),
     r'optim_wrapper\.beta: must be > 0 and < 1.*docs/usage\.md'),
    (dict(type='ARSAMOptimWrapper', reuse='stale'),
     r'optim_wrapper\.reuse: .*no longer takes'),
    (dict(type='MSAMOptimWrapper', rho=0), r'optim_wrapper\.rho'),
    (dict(type='SAMOptimWrapper', loss_scale='dynamic'),
     r'optim_wrapper\.loss_scale'),
])
def test_wrapper_arguments_are_checked_before_the_runner(wrapper, match):
    """tools/train.py refuses a bad wrapper argument before the Runner
    prints the config or builds anything."""
    from arsam_mm.optim._checks import ConfigError
    with pytest.raises(ConfigError, match=match):
        check_config(Config(dict(optim_wrapper=wrapper)))


def test_train_py_ends_a_config_error_with_one_line(tmp_path):
    from arsam_mm.runner import cli
    with pytest.raises(SystemExit) as stop:
        cli(['configs/demo/fcn_r18_shapes_arsam.py', '--work-dir',
             str(tmp_path), '--cfg-options', 'optim_wrapper.budgte=0.3'])
    message = str(stop.value.code)
    assert message.startswith('train.py: error: optim_wrapper.budgte')
    assert '\n' not in message
    assert not list(tmp_path.iterdir())  # nothing was built or written


def test_msam_restores_w_when_the_forward_raises(seg_batches):
    model = build_segmentor()
    wrapper = build_optim_wrapper(model, dict(
        type='MSAMOptimWrapper', rho=0.3,
        optimizer=dict(type='SGD', lr=0.05, momentum=0.9)))
    model.train_step(copy.deepcopy(seg_batches[0]), wrapper)  # a momentum
    w = [p.detach().clone() for p in model.parameters()]

    def fail(module, inputs):
        raise RuntimeError('forward failed')

    handle = model.backbone.register_forward_pre_hook(fail)
    with pytest.raises(RuntimeError, match='forward failed'):
        model.train_step(copy.deepcopy(seg_batches[1]), wrapper)
    handle.remove()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), w))


def test_amp_flag_switches_to_the_twin():
    cfg = Config(dict(optim_wrapper=dict(type='ARSAMOptimWrapper', rho=0.1)))
    switch_to_amp(cfg)
    assert cfg.optim_wrapper.type == 'AmpARSAMOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapperDict')))
    with pytest.raises(ValueError, match='optim_wrapper.type'):
        switch_to_amp(cfg)


@pytest.mark.parametrize('type_name, kwargs, match', [
    ('ARSAMOptimWrapper', dict(rho='0.05'), r'optim_wrapper\.rho: .*str'),
    ('ARSAMOptimWrapper', dict(window=2.5), r'optim_wrapper\.window: .*'
     'integer'),
    ('ARSAMOptimWrapper', dict(max_reuse=True), r'optim_wrapper\.max_reuse'),
    ('SAMOptimWrapper', dict(exclude='['), r'optim_wrapper\.exclude: .*'
     'not a valid regex'),
    ('SAMOptimWrapper', dict(exclude=3), r'optim_wrapper\.exclude'),
    ('ARSAMOptimWrapper', dict(loss_scale='dynamic'),
     r"optim_wrapper\.loss_scale: .*type='AmpARSAMOptimWrapper'"),
    ('SAMOptimWrapper', dict(dtype='float16'),
     r"optim_wrapper\.dtype: .*type='AmpSAMOptimWrapper'.*--amp"),
    ('LookSAMOptimWrapper', dict(k=2.0), r'optim_wrapper\.k: .*integer'),
    ('RandomSAMOptimWrapper', dict(p='0.5'), r'optim_wrapper\.p: '),
    ('AESAMOptimWrapper', dict(delta=1), r'optim_wrapper\.delta: .*< 1'),
])
def test_bad_values_are_refused_at_build_time(type_name, kwargs, match):
    model = build_segmentor()
    with pytest.raises(ValueError, match=match):
        build_optim_wrapper(model, dict(
            type=type_name, optimizer=dict(type='SGD', lr=0.01), **kwargs))


def test_exclude_of_everything_is_refused_before_the_first_iteration(
        tmp_path, shapes_root):
    model = build_segmentor()
    forwards = []
    model.backbone.register_forward_hook(lambda *a: forwards.append(1))
    runner = make_runner(
        tmp_path, model, shapes_root,
        dict(type='ARSAMOptimWrapper', exclude='.*',
             optimizer=dict(type='SGD', lr=0.01)), 2)
    with pytest.raises(ValueError, match=r'optim_wrapper\.exclude'):
        runner.train()
    assert not forwards


def test_warmup_epochs_count_dataloader_passes_in_an_iter_loop(
        tmp_path, shapes_root):
    # 24 images, batch 4: an epoch is 6 iterations. IterBasedTrainLoop
    # never advances the runtime epoch; the warm-up must still end.
    # SAMRunInfoHook publishes the dataloader's length (tools/train.py adds
    # it to every run).
    runner = make_runner(
        tmp_path, build_segmentor(), shapes_root,
        dict(type='ARSAMOptimWrapper', warmup_epochs=1, window=4,
             schedule='paper',  # a rate that stays at 1 in 12 iterations
             optimizer=dict(type='SGD', lr=0.01)), 12,
        custom_hooks=[dict(type='SAMRunInfoHook')])
    runner.train()
    wrapper = runner.optim_wrapper
    assert wrapper.policy.warmup_iters == 6
    # 6 warm-up SAM iterations, then a window of 4 with a quota of 1 (the
    # last 2 iterations open the next window, which may take its one).
    assert 6 + 1 <= wrapper.sam_iters <= 6 + 2


def test_warmup_epochs_without_an_epoch_length_is_refused(
        tmp_path, shapes_root):
    """An iteration loop publishes no epoch length: instead of a warm-up
    that never ends, a named error with the fix."""
    from arsam_mm.optim import RunLengthUnknownError
    runner = make_runner(
        tmp_path, build_segmentor(), shapes_root,
        dict(type='ARSAMOptimWrapper', warmup_epochs=1,
             optimizer=dict(type='SGD', lr=0.01)), 4)
    with pytest.raises(RunLengthUnknownError, match='SAMRunInfoHook'):
        runner.train()


@pytest.mark.parametrize('key, close', [
    ('warmup_iter', 'warmup_iters'),
    ('buget', 'budget'),
    ('clip_gard', 'clip_grad'),
])
def test_unknown_wrapper_argument_names_the_closest(key, close):
    from mmengine.optim import build_optim_wrapper
    with pytest.raises(ValueError,
                       match=rf'optim_wrapper\.{key}: .*Did you mean .*{close}'):
        build_optim_wrapper(build_segmentor(), dict(
            type='ARSAMOptimWrapper', optimizer=dict(type='SGD', lr=0.01),
            **{key: 1}))


def test_unknown_msam_argument_is_refused():
    from mmengine.optim import build_optim_wrapper
    with pytest.raises(ValueError, match=r'optim_wrapper\.excludes: .*exclude'):
        build_optim_wrapper(build_segmentor(), dict(
            type='MSAMOptimWrapper', excludes=['bn'],
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))


def test_misspelt_wrapper_type_names_the_registered_ones():
    from arsam_mm.runner import check_wrapper_type
    with pytest.raises(ValueError, match=r'optim_wrapper\.type: '
                       r"'ARSAMOptimizerWrapper' .*Did you mean "
                       'ARSAMOptimWrapper'):
        check_config(Config(dict(optim_wrapper=dict(
            type='ARSAMOptimizerWrapper', optimizer=dict(type='SGD')))))
    check_wrapper_type('AmpOptimWrapper')  # mmengine's own: accepted


def test_bare_resume_on_an_empty_work_dir_says_so(tmp_path):
    from arsam_mm.runner import say_when_nothing_to_resume
    message = say_when_nothing_to_resume(Config(dict(work_dir=str(tmp_path))))
    assert 'no checkpoint' in message and 'from scratch' in message
    (tmp_path / 'iter_4.pth').write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    assert say_when_nothing_to_resume(
        Config(dict(work_dir=str(tmp_path)))) is None
