"""The mmengine and torch internals the two-pass step relies on (each is
listed in docs/design.md, "mmengine internals we rely on"). A test here
fails when an upgrade changes one of them, before the wrappers misbehave.
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


def test_amp_wrapper_parses_loss_scale_as_we_repeat_it():
    """AmpOnAnyDevice repeats AmpOptimWrapper.__init__'s branches for
    loss_scale ('dynamic', float, dict, else TypeError)."""
    source = inspect.getsource(AmpOptimWrapper.__init__)
    for branch in ("loss_scale == 'dynamic'", 'isinstance(loss_scale, float)',
                   'self._scale_update_param = loss_scale',
                   'isinstance(loss_scale, dict)', 'scaler_type(**loss_scale)',
                   'raise TypeError'):
        assert branch in source, branch
    model = build_segmentor()
    for loss_scale, scale in (('dynamic', 2.0**16), (512.0, 512.0),
                              (dict(init_scale=64.0), 64.0)):
        wrapper = build_optim_wrapper(model, dict(
            type='AmpSAMOptimWrapper', loss_scale=loss_scale,
            optimizer=dict(type='SGD', lr=0.01)))
        assert isinstance(wrapper, AmpSAMOptimWrapper)
        assert wrapper.loss_scaler.get_scale() == scale
    with pytest.raises(TypeError, match='loss_scale'):
        build_optim_wrapper(model, dict(
            type='AmpSAMOptimWrapper', loss_scale='static',
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
