"""The peer fast-SAM methods: schedules and reuse rules by hand, and each
wrapper (and its AMP twin) through a real Runner."""
import copy
import math

import numpy as np
import pytest
import torch
from conftest import (
    build_segmentor,
    make_runner,
    record_sam_step,
    watch_forward,
)
from mmengine.optim import build_optim_wrapper

from arsam import LatePhaseSAM, RunLengthUnknownError
from arsam_mm.optim import (
    AESAMPolicy,
    LatePhaseSAMPolicy,
    LookSAMPolicy,
    PeriodicSAMPolicy,
    RandomSAMPolicy,
)


def test_looksam_schedule_and_reuse():
    policy = LookSAMPolicy(k=3, alpha=0.7)
    policy.bind(2)
    assert [policy.take_two_passes() for _ in range(7)] == [
        True, False, False, True, False, False, True]
    g = [torch.tensor([3.0, 0.0]), torch.tensor([4.0])]
    g_s = [torch.tensor([3.0, 2.0]), torch.tensor([5.0])]
    record_sam_step(policy, g, g_s, None, None)
    # By hand: g_v = g_s - (<g_s,g>/|g|^2) g, then normalised.
    gv = np.array([3, 2, 5.0]) - (9 + 20) / 25 * np.array([3, 0, 4.0])
    unit = gv / np.linalg.norm(gv)
    got = torch.cat(policy.direction).numpy()
    np.testing.assert_allclose(got, unit, rtol=1e-5)
    assert abs(float(np.dot(got, [3, 0, 4]))) < 1e-5  # orthogonal to g
    grads = [torch.tensor([1.0, 2.0]), torch.tensor([2.0])]
    policy.on_one_pass_step(grads, None, None)
    want = np.array([1, 2, 2.0]) + 0.7 * 3.0 * unit  # ||g|| = 3
    np.testing.assert_allclose(torch.cat(grads).numpy(), want, rtol=1e-5)


def _aesam_paper(norms, delta, lambda1, lambda2, total):
    """AE-SAM's rule as the paper writes it (Jiang et al., ICLR 2023):
    mu_t, sigma_t^2 take ||g_t||^2 first, then the comparison with
    c_t = (t/T) lambda1 + (1 - t/T) lambda2; mu and sigma^2 start at 0."""
    mu = var = 0.0
    decisions = []
    for t, norm in enumerate(norms):
        sq = norm * norm
        mu = delta * mu + (1 - delta) * sq
        var = delta * var + (1 - delta) * (sq - mu)**2
        c_t = t / total * lambda1 + (1 - t / total) * lambda2
        decisions.append(sq >= mu + c_t * math.sqrt(var))
    return decisions


def test_aesam_decisions_follow_the_paper():
    delta, l1, l2, n = 0.9, -1.0, 1.0, 12
    policy = AESAMPolicy(delta=delta, lambda1=l1, lambda2=l2)
    policy.on_train_start(n)
    norms = [1.0, 1.2, 0.8, 2.0, 1.0, 1.1, 3.0, 0.5, 0.9, 1.0, 2.5, 1.0]
    got = [policy.confirm_two_passes([torch.tensor([x])], None)
           for x in norms]
    assert got == _aesam_paper(norms, delta, l1, l2, n)
    assert 0 < sum(got) < n


def test_aesam_threshold_falls_so_sam_grows_late():
    n = 4000
    norms = np.random.default_rng(0).lognormal(0.0, 0.3, n).tolist()
    policy = AESAMPolicy()  # lambda1=-1 (end), lambda2=1 (start)
    policy.on_train_start(n)
    got = [policy.confirm_two_passes([torch.tensor([x])], None)
           for x in norms]
    assert got == _aesam_paper(norms, 0.9, -1.0, 1.0, n)
    early, late = np.mean(got[:n // 4]), np.mean(got[-n // 4:])
    assert early < 0.3 < 0.7 < late, (early, late)


def test_rst_probability_and_schedule():
    policy = RandomSAMPolicy(p=0.3, seed=4)
    draws = [policy.take_two_passes() for _ in range(2000)]
    assert abs(np.mean(draws) - 0.3) < 0.04
    gen = torch.Generator().manual_seed(4)
    replay = [float(torch.rand((), generator=gen)) < 0.3 for _ in range(2000)]
    assert draws == replay
    ramp = RandomSAMPolicy(p=0.0, p_end=1.0)
    ramp.on_train_start(1000)
    draws = [ramp.take_two_passes() for _ in range(1000)]
    assert np.mean(draws[:200]) < 0.2 and np.mean(draws[-200:]) > 0.8


@pytest.mark.parametrize('type_name, extra, sam_iters', [
    ('LookSAMOptimWrapper', dict(k=3), 2),
    ('AmpLookSAMOptimWrapper', dict(k=3), 2),
    ('RandomSAMOptimWrapper', dict(p=0.5, seed=1), None),
    ('AmpRandomSAMOptimWrapper', dict(p=0.5, seed=1), None),
    ('AESAMOptimWrapper', dict(), None),
    ('AmpAESAMOptimWrapper', dict(), None),
])
def test_peer_wrappers_train(tmp_path, shapes_root, type_name, extra,
                             sam_iters):
    runner = make_runner(
        tmp_path, build_segmentor(), shapes_root,
        dict(type=type_name, rho=0.05, optimizer=dict(type='SGD', lr=0.01),
             **extra), 6)
    runner.train()
    wrapper = runner.optim_wrapper
    assert wrapper.total_iters == 6
    if sam_iters is not None:
        assert wrapper.sam_iters == sam_iters
    else:
        assert 1 <= wrapper.sam_iters <= 6
    assert runner.message_hub.get_scalar('train/sam_rate').current() == (
        pytest.approx(wrapper.sam_iters / 6))
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())


def test_periodic_sam_counts():
    policy = PeriodicSAMPolicy(k=3)
    assert [policy.take_two_passes() for _ in range(7)] == [
        True, False, False, True, False, False, True]
    grads = [torch.tensor([1.0, 2.0])]
    policy.on_one_pass_step(grads, None, None)  # no reuse: g untouched
    assert grads[0].tolist() == [1.0, 2.0]


def test_periodic_sam_fractional_period():
    """k = 1.6: SAM iterations evenly spread at rate 1/1.6, gaps of 1 and 2,
    floor((n - 1) / k) + 1 of the first n: with k = n / m, exactly m (an
    equal-budget control at any rate)."""
    policy = PeriodicSAMPolicy(k=1.6)
    taken = [policy.take_two_passes() for _ in range(16)]
    assert sum(taken) == 10
    assert taken[:8] == [True, False, True, False, True, True, False, True]
    for n in range(1, 40):
        policy = PeriodicSAMPolicy(k=2.5)
        assert sum(policy.take_two_passes() for _ in range(n)) == (
            math.floor((n - 1) / 2.5) + 1)
    for m in range(1, 24):
        policy = PeriodicSAMPolicy(k=max(1.0, 1 / (m / 23)))
        assert sum(policy.take_two_passes() for _ in range(23)) == m
    # An integer-valued float is the integer period.
    policy = PeriodicSAMPolicy(k=3.0)
    assert [policy.take_two_passes() for _ in range(7)] == [
        True, False, False, True, False, False, True]


@pytest.mark.parametrize('type_name, extra', [
    ('PeriodicSAMOptimWrapper', dict(k=4)),  # iterations 1, 5, 9
    ('AmpPeriodicSAMOptimWrapper', dict(k=4)),
    ('LatePhaseSAMOptimWrapper', dict(share=0.4)),  # iterations 7, 8, 9
    ('AmpLatePhaseSAMOptimWrapper', dict(share=0.4)),
])
def test_scheduled_peer_wrappers_train(tmp_path, shapes_root, type_name,
                                       extra):
    runner = make_runner(
        tmp_path, build_segmentor(), shapes_root,
        dict(type=type_name, rho=0.05, optimizer=dict(type='SGD', lr=0.01),
             **extra), 9)
    runner.train()
    assert runner.optim_wrapper.sam_iters == 3
    assert runner.message_hub.get_scalar('train/sam_rate').current() == (
        pytest.approx(3 / 9))


def test_msam_perturbs_along_momentum_and_steps_from_w(seg_batches):
    """MSAM: the forward runs at w - rho v/||v||; the SGD step then starts
    from w (restored bit for bit) with the gradient taken there."""
    rho, lr, momentum = 0.3, 0.05, 0.9
    model = build_segmentor()
    wrapper = build_optim_wrapper(model, dict(
        type='MSAMOptimWrapper', rho=rho,
        optimizer=dict(type='SGD', lr=lr, momentum=momentum)))
    params, seen, grads = watch_forward(model)

    w0 = [p.detach().clone() for p in params]
    model.train_step(copy.deepcopy(seg_batches[0]), wrapper)
    # No momentum before the first step: that pass ran at w.
    assert all(torch.equal(a, b) for a, b in zip(seen[0], w0))

    w1 = [p.detach().clone() for p in params]
    v1 = [wrapper.optimizer.state[p]['momentum_buffer'].clone()
          for p in params]
    model.train_step(copy.deepcopy(seg_batches[1]), wrapper)
    v_norm = torch.linalg.vector_norm(torch.stack([v.norm() for v in v1]))
    for got, w, v in zip(seen[1], w1, v1):
        torch.testing.assert_close(got, w - rho * v / v_norm)
    # SGD with momentum from w1 with the gradient at the perturbed point.
    for i, (p, w, v) in enumerate(zip(params, w1, v1)):
        torch.testing.assert_close(p.detach(),
                                   w - lr * (momentum * v + grads[i]))
    assert not torch.equal(grads[0], torch.zeros_like(grads[0]))


def test_msam_trains_through_a_runner(tmp_path, shapes_root):
    runner = make_runner(
        tmp_path, build_segmentor(), shapes_root,
        dict(type='AmpMSAMOptimWrapper', rho=0.3,
             optimizer=dict(type='SGD', lr=0.01, momentum=0.9)), 4)
    runner.train()
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())


def test_late_phase_sam_takes_the_last_share_at_any_run_length():
    """SAM on exactly the last floor(share * n) steps: the cost,
    (1 + share) / 2 of SAM's passes up to the floor, is known before the
    run, whatever its length."""
    for share in (0.2, 0.5, 1.0):
        for n in (1, 2, 7, 10, 33, 250):
            policy = LatePhaseSAMPolicy(share=share)
            policy.on_train_start(n)
            taken = [policy.take_two_passes() for _ in range(n)]
            sam = math.floor(share * n)
            assert taken == [False] * (n - sam) + [True] * sam, (share, n)
    with pytest.raises(RunLengthUnknownError, match='max_steps'):
        LatePhaseSAMPolicy().take_two_passes()


def test_plain_late_phase_sam_runs_the_second_pass_late_only():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 2))
    optimizer = LatePhaseSAM(model, torch.optim.SGD(model.parameters(),
                                                    lr=0.1), rho=0.05,
                             share=0.3, max_steps=10)
    inputs, targets = torch.randn(8, 4), torch.randint(0, 2, (8, ))
    calls = []

    def closure():
        calls[-1] += 1
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        return loss

    for _ in range(10):
        calls.append(0)
        optimizer.step(closure)
        optimizer.zero_grad()
    assert calls == [1] * 7 + [2] * 3
    assert optimizer.sam_rate == pytest.approx(0.3)
