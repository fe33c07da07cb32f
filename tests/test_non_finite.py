"""A non-finite pass never kills the run or poisons the schedule.

Faults are injected into a real mmseg model with a forward hook that turns
the decode head's output to inf on a chosen forward call (first or second
pass of an iteration); everything else is the real stack.
"""
import copy
import math

import pytest
import torch
from conftest import build_segmentor
from mmengine.optim import build_optim_wrapper

from arsam_mm.optim import ARSAMPolicy


class _Fault:
    """Makes forward call number ``n`` (1-based) of the classifier return
    inf (``grad=False``), or its gradient on the way back (``grad=True``:
    the loss stays finite, the gradients below it do not)."""

    def __init__(self, model, grad=False):
        self.calls, self.at, self.grad = 0, set(), grad
        model.decode_head.conv_seg.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.calls += 1
        if self.calls not in self.at:
            return output
        if self.grad:
            output.register_hook(lambda grad: grad * float('inf'))
            return output
        return output * float('inf')


def _wrapper(model, type_name, **kwargs):
    """A wrapper told, as a Runner tells it, that the run is 100 long."""
    wrapper = build_optim_wrapper(model, dict(
        type=type_name, rho=0.05, optimizer=dict(type='SGD', lr=0.01),
        **kwargs))
    wrapper.initialize_count_status(model, 0, 100)
    return wrapper


def _step(model, wrapper, batch):
    model.train_step(copy.deepcopy(batch), wrapper)


def _all_finite(tensors):
    return all(torch.isfinite(t).all() for t in tensors if t is not None)


@pytest.mark.parametrize('grad', [False, True], ids=['loss', 'grad'])
def test_amp_overflow_in_the_perturbed_pass_costs_one_step(seg_batches,
                                                           grad):
    model = build_segmentor()
    fault = _Fault(model, grad)
    wrapper = _wrapper(model, 'AmpARSAMOptimWrapper', window=10,
                       warmup_iters=2, loss_scale=dict(init_scale=1024.0))
    policy = wrapper.policy
    _step(model, wrapper, seg_batches[0])  # SAM iteration: calls 1, 2
    counts = dict(policy.statistics.counts)
    before = copy.deepcopy(model.state_dict())

    fault.at = {4}  # the second (perturbed) pass of the next SAM iteration
    _step(model, wrapper, seg_batches[1])
    assert fault.calls == 4
    assert wrapper.loss_scaler.get_scale() == 512.0  # one back-off
    for name, value in model.named_parameters():  # the step was skipped
        assert torch.equal(value, before[name]), name
    assert _all_finite(policy.reuse.scaled_psf)  # the stored PSF never takes inf/NaN
    assert policy.statistics.counts == counts  # no history took a record
    assert all(_all_finite([h]) for h in policy.statistics.history.values()
               if h is not None)

    # The next iterations train normally: one-pass steps that are not
    # skipped, mixing nothing until a new SAM iteration stores a PSF.
    for batch in seg_batches[2:5]:
        previous = [p.detach().clone() for p in model.parameters()]
        _step(model, wrapper, batch)
        assert policy.reuse.coef == 0.0
        assert any(not torch.equal(p, q)
                   for p, q in zip(model.parameters(), previous))
    assert wrapper.loss_scaler.get_scale() == 512.0  # no further skips
    assert _all_finite(policy.reuse.scaled_psf) and math.isfinite(policy.window_target)
    assert _all_finite(model.parameters())
    assert fault.calls == 4 + 3  # one pass each


@pytest.mark.parametrize('call, which, grad', [
    (3, 'loss in the first pass', False),
    (4, 'loss in the second pass', False),
    (3, 'gradient in the first pass', True),
    (4, 'gradient in the second pass', True)])
def test_fp32_non_finite_pass_fails_at_that_iteration(seg_batches, call,
                                                      which, grad):
    model = build_segmentor()
    fault = _Fault(model, grad)
    wrapper = _wrapper(model, 'ARSAMOptimWrapper', window=10,
                       warmup_iters=5)
    _step(model, wrapper, seg_batches[0])
    before = copy.deepcopy(model.state_dict())
    counts = dict(wrapper.policy.statistics.counts)
    fault.at = {call}
    with pytest.raises(FloatingPointError) as info:
        _step(model, wrapper, seg_batches[1])
    message = str(info.value)
    assert which in message and 'iteration 2' in message, message
    assert 'clip the gradients' in message and '--amp' in message
    for name, value in model.named_parameters():  # weights restored
        assert torch.equal(value, before[name]), name
    assert wrapper.policy.statistics.counts == counts
    assert _all_finite(wrapper.policy.reuse.scaled_psf)


def _poisoned(policy):
    policy.bind(1)
    for value in (1.0, float('nan'), 2.0):
        policy.statistics._push('r', torch.tensor(value))
    return policy


def test_rate_update_rejects_non_finite_statistics():
    policy = _poisoned(ARSAMPolicy(window=2, warmup_iters=0,
                                   schedule='paper'))
    with pytest.warns(UserWarning, match='non-finite'):
        decisions = [policy.take_two_passes() for _ in range(6)]
    assert policy.window_target == 1.0 and sum(decisions) == 3


def test_budget_placement_ignores_non_finite_statistics():
    policy = _poisoned(ARSAMPolicy(window=2, warmup_iters=0, budget=0.5))
    policy.on_train_start(12)
    decisions = [policy.take_two_passes() for _ in range(12)]
    assert sum(decisions) == 6  # the budget, whatever the statistics say
    assert math.isfinite(policy.schedule_rule.budget.log_weight)
