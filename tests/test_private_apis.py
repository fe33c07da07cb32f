"""Every private torch, mmengine and mmpretrain API the package relies on
(each listed in docs/design.md, "Private APIs we rely on"), pinned by what
it does, never by its source text. A test here fails when an upgrade
changes one of them, before the optimizers misbehave.
"""
import copy
import inspect

import pytest
import torch
from conftest import build_segmentor
from mmengine.optim import AmpOptimWrapper, OptimWrapper, build_optim_wrapper

from arsam._amp import grad_scale_of
from arsam_mm.optim import AmpSAMOptimWrapper


def test_backward_counts_micro_batches_in_inner_count():
    model = build_segmentor()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    assert wrapper._inner_count == 0
    loss = sum(p.sum() for p in model.parameters())
    wrapper.backward(loss)
    # The second pass undoes exactly this increment.
    assert wrapper._inner_count == 1


def test_accumulative_counts_is_kept_in_a_private_attribute():
    model = build_segmentor()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1),
                           accumulative_counts=3)
    assert wrapper._accumulative_counts == 3


def test_run_forward_takes_a_preprocessed_batch(seg_batches):
    """The second forward reuses the recorded preprocessed batch through
    ``_run_forward(data, mode='loss')``, as ``train_step`` calls it."""
    model = build_segmentor()
    params = inspect.signature(type(model)._run_forward).parameters
    assert list(params)[1:] == ['data', 'mode']
    data = model.data_preprocessor(copy.deepcopy(seg_batches[0]), True)
    losses = model._run_forward(data, mode='loss')
    assert set(losses) and all(k.startswith(('decode', 'aux'))
                                for k in losses)


def test_grad_scaler_keeps_its_scale_on_the_device():
    scaler = torch.amp.GradScaler('cpu', init_scale=1024.0)
    scaler.scale(torch.ones(()))  # the scale tensor exists after first use
    scale = grad_scale_of(scaler)
    assert isinstance(scale, torch.Tensor) and scale.item() == 1024.0
    assert scaler.get_scale() == 1024.0


def test_amp_wrapper_parses_loss_scale_as_we_repeat_it(monkeypatch):
    """AmpOnAnyDevice repeats AmpOptimWrapper.__init__'s parsing of
    loss_scale on a CPU: for each form both build the scaler from the same
    arguments (mmengine's run with an accelerator faked, its scaler
    recorded) and keep the same static scale."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper as upstream

    real = torch.amp.GradScaler

    def recorder(record):
        def scaler(*args, **kwargs):
            record.append(kwargs)
            return real('cpu', **kwargs)
        return scaler

    theirs, ours = [], []
    monkeypatch.setattr(upstream, 'is_cuda_available', lambda: True)
    monkeypatch.setattr(upstream, 'GradScaler', recorder(theirs))
    model = build_segmentor()
    for loss_scale in ('dynamic', 512.0, dict(init_scale=64.0,
                                               growth_interval=7)):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        upstream_wrapper = AmpOptimWrapper(loss_scale=loss_scale,
                                           optimizer=optimizer)
        with monkeypatch.context() as patch:
            patch.setattr(torch.amp, 'GradScaler',
                          lambda device, **kwargs: recorder(ours)(**kwargs))
            with monkeypatch.context() as cpu:
                cpu.setattr('mmengine.device.get_device', lambda: 'cpu')
                wrapper = build_optim_wrapper(model, dict(
                    type='AmpSAMOptimWrapper', loss_scale=loss_scale,
                    optimizer=dict(type='SGD', lr=0.01)))
        assert isinstance(wrapper, AmpSAMOptimWrapper)
        assert ours[-1] == theirs[-1], loss_scale
        assert (wrapper._scale_update_param
                == upstream_wrapper._scale_update_param)
    for wrong in ('static', 3):
        with pytest.raises(TypeError, match='loss_scale'):
            AmpOptimWrapper(loss_scale=wrong, optimizer=optimizer)
        with pytest.raises(TypeError, match='loss_scale'):
            build_optim_wrapper(model, dict(
                type='AmpSAMOptimWrapper', loss_scale=wrong,
                optimizer=dict(type='SGD', lr=0.01)))


def test_queue_callback_runs_once_when_the_backward_ends():
    """FakeQuantHook's DDP average of step-size gradients: queued from a
    post-accumulate-grad hook, it must run after every gradient of that
    backward is accumulated, once, and not in the next backward."""
    from torch.autograd import Variable
    a = torch.ones(3, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    seen = []

    def when_done():
        seen.append((a.grad.clone(), b.grad.clone()))

    a.register_post_accumulate_grad_hook(
        lambda p: Variable._execution_engine.queue_callback(when_done))
    (2 * a + 3 * b).sum().backward()
    assert len(seen) == 1
    assert seen[0][0].tolist() == [2.0] * 3
    assert seen[0][1].tolist() == [3.0] * 3  # b's gradient was there too
    a.grad = b.grad = None
    (a * b).sum().backward()  # the hook queues again: one more call
    assert len(seen) == 2


# ----------------------------------------------------------------- torch
def test_batchnorm_base_class_and_frozen_statistics():
    """``torch.nn.modules.batchnorm._BatchNorm``: every BatchNorm is one,
    and with ``track_running_stats`` off in train mode it normalises with
    the batch and records nothing (the second pass's freeze)."""
    from torch.nn.modules.batchnorm import _BatchNorm
    for cls in (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d,
                torch.nn.SyncBatchNorm):
        assert issubclass(cls, _BatchNorm)
    bn = torch.nn.BatchNorm1d(3).train()
    bn(torch.randn(8, 3))
    mean, count = bn.running_mean.clone(), bn.num_batches_tracked.clone()
    bn.track_running_stats = False
    x = torch.randn(8, 3) * 5 + 2
    out = bn(x)
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-5,
                               rtol=0)  # the batch's own statistics
    assert torch.equal(bn.running_mean, mean)
    assert torch.equal(bn.num_batches_tracked, count)


def test_flatten_dense_tensors_round_trips():
    """``torch._utils._flatten_dense_tensors`` and its inverse: the DDP
    averages of the kept gradient and of the step sizes."""
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
    tensors = [torch.randn(2, 3), torch.randn(4)]
    flat = _flatten_dense_tensors(tensors)
    assert flat.shape == (10, )
    for a, b in zip(_unflatten_dense_tensors(flat, tensors), tensors):
        assert torch.equal(a, b)


def test_group_tensors_by_device_and_dtype_gives_groups_and_positions():
    """``torch.utils._foreach_utils._group_tensors_by_device_and_dtype``:
    a split model's tensors per (device, dtype), with their positions."""
    from torch.utils._foreach_utils import _group_tensors_by_device_and_dtype
    tensors = [torch.ones(1), torch.ones(2, dtype=torch.float64),
               torch.ones(3)]
    grouped = _group_tensors_by_device_and_dtype([tensors],
                                                 with_indices=True)
    got = {key[1]: positions for key, (_, positions) in grouped.items()}
    assert got == {torch.float32: [0, 2], torch.float64: [1]}


def test_conv_forward_takes_the_weight_to_use():
    """``nn.Conv2d._conv_forward(x, weight, bias)``: the quantized conv
    runs the layer with its fake-quantized weight."""
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)
    x = torch.randn(1, 2, 5, 5)
    weight = conv.weight.detach() * 2
    torch.testing.assert_close(
        conv._conv_forward(x, weight, conv.bias),
        torch.nn.functional.conv2d(x, weight, conv.bias, padding=1))


def test_load_from_state_dict_sees_every_key_of_the_module():
    """``nn.Module._load_from_state_dict``: the quantized layers override
    it to accept checkpoints written before their step sizes existed."""
    seen = []

    class Probe(torch.nn.Linear):
        def _load_from_state_dict(self, state_dict, prefix, *args):
            seen.append(sorted(k for k in state_dict if k.startswith(prefix)))
            super()._load_from_state_dict(state_dict, prefix, *args)

    model = torch.nn.Sequential(Probe(2, 2))
    model.load_state_dict(model.state_dict())
    assert seen == [['0.bias', '0.weight']]


def test_torch_compile_names_and_marks_what_it_wraps():
    """A ``torch.compile``-d module prefixes its parameter names with
    ``_orig_mod.`` (``exclude`` strips it); a compiled function carries
    ``_torchdynamo_orig_callable`` (the refusal of a compiled train_step).
    Nothing is compiled until called."""
    from arsam.perturbed_params import _COMPILED_PREFIX
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    compiled = torch.compile(model)
    names = [n for n, _ in compiled.named_parameters()]
    assert names == ['_orig_mod.0.weight', '_orig_mod.0.bias']
    assert [_COMPILED_PREFIX.sub(r'\1', n) for n in names] == [
        '0.weight', '0.bias']

    def step():
        return None

    assert torch.compile(step)._torchdynamo_orig_callable is step


# --------------------------------------------------------------- mmengine
def test_dict_action_parses_values_as_cfg_options_does():
    """``DictAction._parse_iterable``: tools/benchmark.py parses its
    per-label ``--cfg-options`` as mmengine's own."""
    from mmengine.config import DictAction
    assert DictAction._parse_iterable('0.5') == 0.5
    assert DictAction._parse_iterable('[1,2]') == [1, 2]
    assert DictAction._parse_iterable('(1,2)') == (1, 2)
    assert DictAction._parse_iterable('True') is True
    assert DictAction._parse_iterable('arsam') == 'arsam'


def test_scheduler_base_values_cover_an_added_param_group():
    """A parameter scheduler's ``base_values`` hold one value per group,
    and a closed-form step (cosine) zips them with the groups: a group
    added after the scheduler was built is driven only once its value is
    appended there, as FakeQuantHook does for the step sizes' group."""
    from mmengine.optim.scheduler import CosineAnnealingLR

    def run(append):
        model = torch.nn.Linear(2, 2)
        optimizer = torch.optim.SGD([model.weight], lr=1.0)
        scheduler = CosineAnnealingLR(optimizer, T_max=4, by_epoch=False)
        assert scheduler.base_values == [1.0]
        optimizer.add_param_group(dict(params=[model.bias], lr=0.1))
        group = optimizer.param_groups[-1]
        group.setdefault('initial_lr', group['lr'])
        if append:
            scheduler.base_values.append(group['initial_lr'])
        for _ in range(2):
            scheduler.step()
        return [g['lr'] for g in optimizer.param_groups]

    assert run(append=True) == pytest.approx([0.5, 0.05])  # half-way
    assert run(append=False) == pytest.approx([0.5, 0.1])  # left behind
