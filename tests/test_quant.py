"""LSQ fake quantization and FakeQuantHook with the SAM-family wrappers."""
import math

import pytest
import torch
from conftest import build_segmentor, make_runner
from mmengine.hooks import Hook

from arsam_mm.hooks import FakeQuantHook
from arsam_mm.quant import lsq_fake_quant, lsq_init_step, lsq_to_int, quant_range


@pytest.mark.parametrize('bits, signed', [(2, True), (4, False), (8, True)])
def test_fake_quant_matches_closed_form_and_lsq_gradients(bits, signed):
    torch.manual_seed(bits)
    qn, qp = quant_range(bits, signed)
    x = (torch.randn(4, 3, 5, 5) * 2).requires_grad_()
    step = torch.tensor(0.3, requires_grad=True)
    y = lsq_fake_quant(x, step, qn, qp)
    closed = torch.clamp(torch.round(x.detach() / 0.3), qn, qp) * 0.3
    assert torch.equal(y.detach(), closed)
    upstream = torch.randn_like(y)
    y.backward(upstream)
    v = x.detach() / 0.3
    inside = (v > qn) & (v < qp)
    # LSQ, eq. 3 and section 2.2: STE for x, the step's gradient scaled by
    # 1 / sqrt(numel * Qp).
    torch.testing.assert_close(x.grad, upstream * inside)
    dstep = torch.where(inside, torch.round(v) - v,
                        torch.where(v <= qn, torch.tensor(float(qn)),
                                    torch.tensor(float(qp))))
    want = (upstream * dstep).sum() / math.sqrt(x.numel() * qp)
    torch.testing.assert_close(step.grad, want, rtol=1e-4, atol=1e-6)


def test_per_channel_steps_and_integer_round_trip():
    torch.manual_seed(0)
    weight = torch.randn(6, 3, 3, 3)
    qn, qp = quant_range(4, True)
    step = lsq_init_step(weight, qp, dim=0).view(6, 1, 1, 1)
    want = 2 * weight.abs().flatten(1).mean(1) / math.sqrt(qp)
    torch.testing.assert_close(step.flatten(), want)
    ints = lsq_to_int(weight, step, qn, qp)
    assert ints.dtype == torch.int8 and ints.min() >= qn and ints.max() <= qp
    assert torch.equal(ints.float() * step,
                       lsq_fake_quant(weight, step, qn, qp))


@pytest.mark.parametrize('kwargs, key', [
    (dict(w_bits=1), 'w_bits'), (dict(a_bits=9), 'a_bits'),
    (dict(types=['Conv3d']), 'types'), (dict(first_last_bits=16),
                                         'first_last_bits')])
def test_bad_hook_settings_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=f'FakeQuantHook.{key}'):
        FakeQuantHook(**kwargs)


def test_quantize_keeps_parameter_objects():
    model = build_segmentor()
    before = {name: p for name, p in model.named_parameters()}
    layers = FakeQuantHook(w_bits=4, a_bits=4).quantize(model)
    assert len(layers) > 10
    after = dict(model.named_parameters())
    for name, param in before.items():
        assert after[name] is param
    assert layers[0].w_bits == 8 and layers[1].w_bits == 4  # first at 8


def _quant_runner(tmp_path, root, iters, **kwargs):
    return make_runner(
        tmp_path, build_segmentor(seed=2), root,
        dict(type='ARSAMOptimWrapper', rho=0.05, window=3, warmup_iters=2,
             optimizer=dict(type='SGD', lr=0.02, momentum=0.9,
                            weight_decay=1e-3)),
        iters, custom_hooks=[dict(type='FakeQuantHook', w_bits=4, a_bits=4)],
        **kwargs)


class _StepSnapshot(Hook):
    """Step sizes right after the first iteration (initialised, 1 update)."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == 1:
            self.values = {n: p.detach().clone()
                           for n, p in runner.model.named_parameters()
                           if n.endswith('_step')}


def test_quantized_arsam_trains_and_never_perturbs_steps(tmp_path,
                                                         shapes_root):
    runner = _quant_runner(tmp_path, shapes_root, 8)
    snapshot = _StepSnapshot()
    runner.register_hook(snapshot)
    runner.train()
    model, wrapper = runner.model, runner.optim_wrapper
    steps = {n: p for n, p in model.named_parameters() if n.endswith('_step')}
    assert steps and all(getattr(p, 'lsq_step', False)
                         for p in steps.values())
    perturbed = {id(p) for p in wrapper._perturbed}
    assert not any(id(p) in perturbed for p in steps.values())
    assert wrapper.sam_iters >= 2
    group = wrapper.optimizer.param_groups[-1]
    assert group['weight_decay'] == 0.0 and len(group['params']) == len(steps)
    assert all(bool(m.quant_initialized) for m in model.modules()
               if hasattr(m, 'quant_initialized'))
    changed = [not torch.equal(p, snapshot.values[n])
               for n, p in steps.items()]
    assert sum(changed) > 0.5 * len(changed)  # the step sizes learn


def test_quantized_resume_is_exact(tmp_path, shapes_root):
    whole = _quant_runner(
        tmp_path / 'whole', shapes_root, 8,
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=4)))
    whole.train()
    resumed = _quant_runner(
        tmp_path / 'resumed', shapes_root, 8, resume=True,
        load_from=str(tmp_path / 'whole' / 'iter_4.pth'))
    resumed.train()
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert any(k.endswith('weight_step') for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
