"""The AMP twins on CPU: bfloat16 autocast and a real torch GradScaler.

mmengine's AmpOptimWrapper refuses to build without an accelerator; ours
fall back to ``torch.amp.GradScaler('cpu')`` there, so the scaled-gradient
logic runs for real in these tests.
"""
import copy

import torch
from conftest import build_segmentor, make_runner
from mmengine.optim import build_optim_wrapper


def _wrapper(model, type_name, **kwargs):
    """A wrapper told, as a Runner tells it, that the run is 100 long."""
    wrapper = build_optim_wrapper(model, dict(
        type=type_name, rho=0.05, optimizer=dict(type='SGD', lr=0.01),
        **kwargs))
    wrapper.initialize_count_status(model, 0, 100)
    return wrapper


def test_amp_arsam_trains_with_a_runner(tmp_path, shapes_root):
    runner = make_runner(
        tmp_path, build_segmentor(), shapes_root,
        dict(type='AmpARSAMOptimWrapper', rho=0.05, window=3, warmup_iters=2,
             budget=0.5, loss_scale='dynamic',
             optimizer=dict(type='SGD', lr=0.01)), 8)
    runner.train()
    wrapper = runner.optim_wrapper
    assert isinstance(wrapper.loss_scaler, torch.amp.GradScaler)
    assert wrapper.loss_scaler.is_enabled()
    assert 2 <= wrapper.sam_iters < 8
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
    assert runner.message_hub.get_scalar('train/psf_norm').current() > 0


def test_psf_is_stored_in_unscaled_units(seg_batches):
    norms, ratios, records = {}, {}, {}
    for type_name, extra in [('ARSAMOptimWrapper', {}),
                             ('AmpARSAMOptimWrapper',
                              dict(loss_scale=dict(init_scale=4096.0)))]:
        model = build_segmentor()
        wrapper = _wrapper(model, type_name, warmup_iters=1, **extra)
        model.train_step(copy.deepcopy(seg_batches[0]), wrapper)
        scalars = wrapper.policy.log_scalars()
        norms[type_name] = scalars['psf_norm'].item()
        ratios[type_name] = scalars['psf_ratio'].item()  # ||psf|| / ||g||
        records[type_name] = wrapper.policy.statistics.history['r'][0].item()
    for values in (norms, ratios, records):
        ratio = values['AmpARSAMOptimWrapper'] / values['ARSAMOptimWrapper']
        assert 0.5 < ratio < 2.0, values  # bf16 noise, not 4096


def test_overflowed_first_pass_skips_ascent_and_step(seg_batches):
    model = build_segmentor()
    wrapper = _wrapper(model, 'AmpARSAMOptimWrapper', warmup_iters=5,
                       loss_scale=dict(init_scale=1024.0))
    calls = []
    model.backbone.register_forward_hook(lambda *a: calls.append(1))
    before = copy.deepcopy(model.state_dict())
    batch = copy.deepcopy(seg_batches[0])
    batch['inputs'] = [x.float() for x in batch['inputs']]
    batch['inputs'][0][0, 0, 0] = float('inf')  # the first pass overflows
    model.train_step(batch, wrapper)
    assert len(calls) == 1  # no second forward
    assert wrapper.loss_scaler.get_scale() == 512.0  # skipped, backed off
    assert wrapper.policy.reuse.scaled_psf is None  # nothing stored from a bad step
    for name, value in model.named_parameters():
        assert torch.equal(value, before[name]), name
    # A finite batch is a full SAM step again.
    model.train_step(copy.deepcopy(seg_batches[1]), wrapper)
    assert len(calls) == 3 and wrapper.policy.reuse.scaled_psf is not None
    assert wrapper.loss_scaler.get_scale() == 512.0
