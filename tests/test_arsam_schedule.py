"""ARSAM's schedule and reuse rule against hand-computed values."""
import copy
import math

import numpy as np
import pytest
import torch
from conftest import build_segmentor, record_sam_step, watch_forward
from reference_sam import reference_sam_step

from arsam_mm.optim import ARSAMPolicy


def _drive(policy, psf_values, iters):
    """Run the policy with g = [1] and PSF values taken in turn (a budget
    policy is told the run is ``iters`` long)."""
    policy.bind(1)
    if policy.budget is not None:
        policy.on_train_start(iters)
    decisions, used = [], []
    values = iter(psf_values)
    for _ in range(iters):
        two = policy.take_two_passes(epoch=0)
        decisions.append(two)
        if two:
            value = next(values)
            used.append(value)
            record_sam_step(policy, [torch.ones(1)], [torch.tensor([1.0 + value])],
                               None, None)
        else:
            policy.on_one_pass_step([torch.zeros(1)], None, None)
    return decisions, used


def _mean_rel_change(seq):
    seq = np.asarray(seq, dtype=np.float64)
    if len(seq) < 2:
        return 0.0
    return float(np.clip(np.mean((seq[1:] - seq[:-1]) / seq[:-1]), -1, 1))


def test_warmup_then_one_sam_iteration_in_first_window():
    policy = ARSAMPolicy(window=10, warmup_iters=7, seed=3,
                         schedule='relative')
    decisions, _ = _drive(policy, np.linspace(1, 2, 100), 17)
    assert decisions[:7] == [True] * 7
    assert sum(decisions[7:17]) == 1  # floor(initial rate 1)


def test_paper_rate_update_and_quota_match_hand_computation():
    window, a1, a2, blocks = 6, 0.5, 0.3, 2
    psf_values = [0.5, 0.6, 0.9, 1.0, 1.4, 2.0, 2.1, 2.5, 3.0, 3.2, 3.9, 4.4,
                  5.0, 5.5, 6.1, 7.0, 8.0, 9.0, 10.0, 11.0]
    policy = ARSAMPolicy(window=window, warmup_iters=window, a1=a1, a2=a2,
                         blocks=blocks, stat_layers=1, max_p=1.0, seed=11,
                         schedule='paper')
    n_iters = window * 4
    decisions, used = _drive(policy, psf_values, n_iters)

    # Replay by hand: the same generator stream, the same rules.
    gen = torch.Generator().manual_seed(11)
    draws = [float(torch.rand((), generator=gen)) for _ in range(n_iters)]
    rate, s_hist, r_hist, v_hist, expected = 1.0, [], [], [], []
    taken = iter(psf_values)

    def record(value):
        r_hist.append(value)  # ||g|| = 1, so r = s = |psf|
        s_hist.append(value)
        last = sorted(s_hist[-window:])
        per_block = len(last) // blocks
        if per_block >= 2:
            chunks = np.array(last[:per_block * blocks]).reshape(blocks, -1)
            v_hist.append(float(chunks.var(axis=1).mean()))

    for i in range(window):  # warm-up
        expected.append(True)
        record(next(taken))
    rates = []
    for w in range(3):
        if w > 0:
            d_r = _mean_rel_change(r_hist[-window:])
            d_v = _mean_rel_change(v_hist[-window:])
            rate = min(max(rate * (1 + a1 * d_r + a2 * d_v), 1.0), window)
        rates.append(rate)
        quota = math.floor(rate)
        for pos in range(window):
            u = draws[window + w * window + pos]
            left = window - pos
            take = quota > 0 and (u >= 1 - rate / window or left <= quota)
            if take:
                quota -= 1
                record(next(taken))
            expected.append(take)
    assert decisions == expected
    assert policy.rate == pytest.approx(rates[-1], rel=1e-5)
    assert rates[1] > 1.0  # the PSF grew: the schedule asked for more SAM
    for w, rate in enumerate(rates):
        block = decisions[window * (w + 1):window * (w + 2)]
        assert sum(block) == math.floor(rate)


def test_rate_is_clipped_to_max_p():
    for schedule in ('relative', 'paper'):
        policy = ARSAMPolicy(window=5, warmup_iters=5, a1=10.0, a2=10.0,
                             max_p=0.6, stat_layers=1, blocks=1,
                             schedule=schedule)
        _drive(policy, [2.0**k for k in range(200)], 60)
        assert policy.rate == pytest.approx(3.0)


def test_relative_schedule_takes_block_variances_from_full_histories():
    # Stationary PSF norms: nothing about the PSF changes. Block variances
    # of a filling s history grow with the count alone, so v must start
    # only once s holds a full window of values.
    window, blocks = 10, 2
    rng = np.random.default_rng(0)
    values = np.exp(rng.normal(0.0, 0.3, 400))
    policy = ARSAMPolicy(window=window, warmup_iters=window, blocks=blocks,
                         stat_layers=1, seed=0)
    _drive(policy, values, window * 12)
    counts = policy.statistics.counts
    assert counts['s'] > window
    assert counts['v'] == counts['s'] - window + 1
    paper = ARSAMPolicy(window=window, warmup_iters=window, blocks=blocks,
                        stat_layers=1, seed=0, schedule='paper')
    _drive(paper, values, window * 12)
    counts = paper.statistics.counts
    assert counts['v'] == counts['s'] - 2 * blocks + 1


def test_relative_schedule_runs_on_the_runs_own_time_scale():
    # Same statistics, different run lengths: log(rate) moves in
    # proportion to reference_iters / max_iters, exp of the paper's step.
    window, a1, a2 = 6, 0.2, 0.1
    values = [1.0 + 0.1 * k for k in range(40)]
    rates, changes = [], []
    for max_iters in (1000, 2000):
        policy = ARSAMPolicy(window=window, warmup_iters=window, a1=a1,
                             a2=a2, blocks=2, stat_layers=1, max_p=1.0,
                             reference_iters=5000, seed=1,
                             schedule='relative')
        policy.on_train_start(max_iters)
        _drive(policy, values, 2 * window + 1)  # warm-up, 1 window, update
        rates.append(policy.rate)
        changes.append(policy.log_scalars())
    assert changes[0]['arsam_dr'] == changes[1]['arsam_dr'] > 0
    step = a1 * changes[0]['arsam_dr'] + a2 * changes[0]['arsam_dv']
    assert rates[0] == pytest.approx(math.exp(5.0 * step))
    assert rates[1] == pytest.approx(math.exp(2.5 * step))


def test_relative_schedule_says_it_is_deprecated():
    with pytest.warns(FutureWarning, match=r"schedule='relative' is "
                      r"deprecated.*schedule='budget'"):
        ARSAMPolicy(schedule='relative')


def test_min_p_is_a_floor_on_the_rate():
    window = 10
    policy = ARSAMPolicy(window=window, warmup_iters=window, min_p=0.3,
                         stat_layers=1, blocks=1, seed=2, schedule='relative')
    policy.on_train_start(200)
    # A falling PSF pulls the rate down; the floor holds it at 3 of 10.
    decisions, _ = _drive(policy, [2.0**-k for k in range(200)], 200)
    assert policy.rate == pytest.approx(3.0)
    for start in range(window, 200, window):
        assert sum(decisions[start:start + window]) == 3


@pytest.mark.parametrize('kwargs, key', [
    (dict(schedule='fast'), 'schedule'),
    (dict(schedule='paper', min_p=0.1), 'min_p'),
    (dict(min_p=0.9, max_p=0.8), 'min_p'),
    (dict(reference_iters=0), 'reference_iters'),
    (dict(budget=1.5), 'budget'),
    (dict(budget=0), 'budget'),
    (dict(schedule='paper', budget=0.2), 'budget'),
    (dict(placement='early'), 'placement'),
    (dict(reuse='orthogonal'), 'reuse'),
])
def test_schedule_arguments_are_checked(kwargs, key):
    with pytest.raises((ValueError, TypeError), match=key):
        ARSAMPolicy(**kwargs)


def test_reuse_rule_weights():
    policy = ARSAMPolicy(beta=0.7, max_reuse=6)
    policy.bind(2)
    psf = [torch.tensor([1.0, -2.0]), torch.tensor([0.5])]
    record_sam_step(policy, [torch.zeros(2), torch.zeros(1)], psf, None, None)
    mixed = []
    for _ in range(8):
        grads = [torch.zeros(2), torch.zeros(1)]
        policy.on_one_pass_step(grads, None, None)
        mixed.append(grads[0][0].item())
    expected = [0.7**k for k in range(1, 7)] + [0.0, 0.0]
    assert mixed == pytest.approx(expected)
    # AMP: the stored PSF is unscaled, the mixed-in term carries the scale.
    record_sam_step(policy, [torch.zeros(2), torch.zeros(1)],
                       [t * 1024.0 for t in psf], torch.tensor(1024.0), None)
    assert policy.stored_psf()[0].tolist() == [1.0, -2.0]
    grads = [torch.zeros(2), torch.zeros(1)]
    policy.on_one_pass_step(grads, torch.tensor(8.0), None)
    assert grads[0].tolist() == pytest.approx([0.7 * 8, -1.4 * 8])


def test_psf_kept_under_a_moving_loss_scale():
    """The PSF is stored as g - g_s in the gradients' units; a tensor
    without a gradient at a later SAM step keeps its PSF across a change of
    the AMP loss scale, and a checkpoint from before psf_scale loads."""
    policy = ARSAMPolicy()
    policy.bind(2)
    psf = [torch.tensor([1.0, -2.0]), torch.tensor([0.5])]
    record_sam_step(policy, [torch.zeros(2), torch.zeros(1)],
                       [t * 1024.0 for t in psf], torch.tensor(1024.0), None)
    # Only tensor 0 has a gradient now, at half the scale.
    record_sam_step(policy, [torch.zeros(2)], [torch.tensor([3.0, 3.0]) * 512.0],
                       torch.tensor(512.0), [0])
    stored = policy.stored_psf()
    assert stored[0].tolist() == [3.0, 3.0] and stored[1].tolist() == [0.5]
    grads = [torch.zeros(2), torch.zeros(1)]
    policy.on_one_pass_step(grads, torch.tensor(4.0), None)
    assert grads[1].tolist() == pytest.approx([policy.beta * 0.5 * 4.0])

    state = policy.state_dict()
    state.pop('psf_scale')
    state['psf'] = [torch.tensor([3.0, 3.0]), torch.tensor([0.5])]
    old = ARSAMPolicy()
    old.bind(2)
    old.load_state_dict(state)
    assert [t.tolist() for t in old.stored_psf()] == [[3.0, 3.0], [0.5]]


def test_wrapper_stores_psf_and_mixes_it(seg_batches):
    """Through the real train_step: PSF = g_s - g, then g + beta * PSF
    (the default beta, 0.99)."""
    from mmengine.optim import build_optim_wrapper
    model = build_segmentor()
    twin = copy.deepcopy(model)
    wrapper = build_optim_wrapper(model, dict(
        type='ARSAMOptimWrapper', rho=0.05, budget=0.5, window=1000,
        optimizer=dict(type='SGD', lr=1.0)))
    # A 2-iteration run at budget 0.5: one SAM iteration (the warm-up, cut
    # to the budget), then a reuse iteration.
    wrapper.initialize_count_status(model, 0, 2)
    model.train_step(copy.deepcopy(seg_batches[0]), wrapper)

    twin_opt = torch.optim.SGD(twin.parameters(), lr=1.0)
    data = twin.data_preprocessor(copy.deepcopy(seg_batches[0]), True)
    first, second = reference_sam_step(twin, data, twin_opt, rho=0.05)
    params = list(twin.parameters())
    for p, psf in zip(params, wrapper.policy.stored_psf()):
        torch.testing.assert_close(psf, second[p] - first[p], rtol=1e-4,
                                   atol=1e-6)

    before = [p.detach().clone() for p in model.parameters()]
    model.train_step(copy.deepcopy(seg_batches[1]), wrapper)
    assert wrapper.sam_iters == 1 and wrapper.total_iters == 2
    data = twin.data_preprocessor(copy.deepcopy(seg_batches[1]), True)
    losses = twin(**data, mode='loss')
    twin.parse_losses(losses)[0].backward()
    for w0, p, t, psf in zip(before, model.parameters(), params,
                             wrapper.policy.stored_psf()):
        step = w0 - p.detach()
        torch.testing.assert_close(step, t.grad + 0.99 * psf, rtol=1e-3,
                                   atol=1e-5)


def test_stale_reuse_takes_the_pass_at_the_last_ascent(seg_batches):
    """reuse='stale': a one-pass step runs its forward at w + rho g/||g||,
    g from the last SAM step, and the SGD step starts from w (restored bit
    for bit) with the gradient taken there, nothing mixed in."""
    from mmengine.optim import build_optim_wrapper
    rho = 0.05
    model = build_segmentor()
    twin = copy.deepcopy(model)
    wrapper = build_optim_wrapper(model, dict(
        type='ARSAMOptimWrapper', rho=rho, budget=0.5, window=1000,
        reuse='stale', optimizer=dict(type='SGD', lr=1.0)))
    wrapper.initialize_count_status(model, 0, 2)  # SAM, then one pass
    params, seen, grads = watch_forward(model)
    model.train_step(copy.deepcopy(seg_batches[0]), wrapper)
    data = twin.data_preprocessor(copy.deepcopy(seg_batches[0]), True)
    first, _ = reference_sam_step(
        twin, data, torch.optim.SGD(twin.parameters(), lr=1.0), rho=rho)
    g = [first[p] for p in twin.parameters() if p.requires_grad]
    g_norm = torch.linalg.vector_norm(torch.stack([t.norm() for t in g]))

    w1 = [p.detach().clone() for p in params]
    seen.clear()
    model.train_step(copy.deepcopy(seg_batches[1]), wrapper)
    assert wrapper.sam_iters == 1 and len(seen) == 1
    for got, w, d in zip(seen[0], w1, g):
        torch.testing.assert_close(got, w + rho * d / g_norm, rtol=1e-4,
                                   atol=1e-6)
    for i, (p, w) in enumerate(zip(params, w1)):
        torch.testing.assert_close(p.detach(), w - grads[i])
    assert wrapper.policy.reuse_count == 1

    # After max_reuse one-pass steps the pass runs at w again.
    wrapper.policy.max_reuse = 1
    w2 = [p.detach().clone() for p in params]
    seen.clear()
    wrapper.initialize_count_status(model, 2, 3)
    model.train_step(copy.deepcopy(seg_batches[0]), wrapper)
    assert all(torch.equal(a, b) for a, b in zip(seen[0], w2))


def test_stale_reuse_keeps_the_first_pass_gradient():
    """The kept direction is g itself, in unscaled units under AMP, and
    it survives a state-dict round trip."""
    policy = ARSAMPolicy(reuse='stale')
    policy.bind(2)
    g = [torch.tensor([1.0, -2.0]), torch.tensor([0.5])]
    g_s = [torch.tensor([4.0, 4.0]), torch.tensor([-1.0])]
    record_sam_step(policy, [t * 256.0 for t in g], [t * 256.0 for t in g_s],
                    torch.tensor(256.0), None)
    assert [t.tolist() for t in policy.stored_psf()] == [[1.0, -2.0], [0.5]]
    assert policy.one_pass_ascent() is policy.psf
    grads = [torch.zeros(2), torch.zeros(1)]
    policy.on_one_pass_step(grads, None, None)
    assert grads[0].tolist() == [0.0, 0.0]  # nothing mixed in
    assert policy.log_scalars()['psf_coef'] == 1.0  # the whole ascent
    resumed = ARSAMPolicy(reuse='stale')
    resumed.bind(2)
    resumed.load_state_dict(copy.deepcopy(policy.state_dict()))
    assert [t.tolist() for t in resumed.stored_psf()] == [[1.0, -2.0], [0.5]]
    assert resumed.reuse_count == 1
    assert ARSAMPolicy(reuse='decay').one_pass_ascent() is None


def _sam_iterations(max_iters, **kwargs):
    """Two-pass iterations of a budgeted ARSAM over a synthetic run whose
    PSF grows (so the adaptive placement leans on the statistics)."""
    policy = ARSAMPolicy(**kwargs)
    rng = np.random.default_rng(0)
    values = 0.1 + 1e-4 * np.arange(max_iters) + 0.05 * rng.random(max_iters)
    decisions, _ = _drive(policy, values, max_iters)
    return np.asarray(decisions)


@pytest.mark.parametrize('max_iters', [400, 2000, 20000])
def test_default_budget_holds_at_every_run_length(max_iters):
    """The default costs at most 0.6x SAM's passes whatever the run length:
    the statistics place the two-pass iterations, never add to them."""
    decisions = _sam_iterations(max_iters)
    passes = (max_iters + decisions.sum()) / (2 * max_iters)
    assert passes <= 0.6
    assert decisions.sum() == int(0.2 * max_iters)  # the whole budget used
    # After the warm-up (one window of 50), spread over the run, not spent
    # at its start or saved for its end.
    after_warmup = decisions[50:].sum()
    assert decisions[max_iters // 2:].sum() >= 0.4 * after_warmup
    assert decisions[50:max_iters // 2].sum() >= 0.4 * after_warmup


@pytest.mark.parametrize('budget', [0.1, 0.35])
def test_budget_is_a_share_of_the_run(budget):
    decisions = _sam_iterations(3000, budget=budget, window=20, seed=4)
    assert decisions.sum() == int(budget * 3000)


def test_budget_placements_move_sam_iterations_not_their_count():
    halves = {}
    for placement in ('front', 'uniform', 'late'):
        decisions = _sam_iterations(4000, placement=placement)
        assert decisions.sum() == 800
        halves[placement] = decisions[:2000].sum()
    assert halves['front'] > halves['uniform'] > halves['late']


def test_budget_cuts_a_warmup_longer_than_itself():
    decisions = _sam_iterations(100, budget=0.1, warmup_iters=50)
    assert decisions.tolist() == [True] * 10 + [False] * 90


def test_budget_needs_the_run_length():
    from arsam_mm.optim.policies.budget import RunLengthUnknownError
    policy = ARSAMPolicy()
    policy.bind(1)
    with pytest.raises(RunLengthUnknownError, match='budget'):
        policy.take_two_passes(epoch=0)


def test_budget_state_resumes_the_same_decisions():
    full = _sam_iterations(600, window=20, seed=7)
    policy = ARSAMPolicy(window=20, seed=7)
    rng = np.random.default_rng(0)
    values = 0.1 + 1e-4 * np.arange(600) + 0.05 * rng.random(600)
    first, _ = _drive(policy, values, 600)  # reference stream, same args
    assert first == full.tolist()
    # Stop after 250 iterations, resume a fresh policy from the state.
    policy = ARSAMPolicy(window=20, seed=7)
    policy.bind(1)
    policy.on_train_start(600)
    head = []
    for i in range(250):
        head.append(policy.take_two_passes(0))
        if head[-1]:
            record_sam_step(policy, [torch.ones(1)],
                               [torch.tensor([1.0 + values[sum(head) - 1]])],
                               None, None)
    state = copy.deepcopy(policy.state_dict())
    resumed = ARSAMPolicy(window=20, seed=7)
    resumed.bind(1)
    resumed.load_state_dict(state)
    resumed.on_train_start(600)
    tail = []
    for i in range(250, 600):
        tail.append(resumed.take_two_passes(0))
        if tail[-1]:
            k = sum(head) + sum(tail) - 1
            record_sam_step(resumed, [torch.ones(1)],
                                [torch.tensor([1.0 + values[k]])], None, None)
    assert head + tail == full.tolist()


def test_scaled_reuse_follows_the_current_gradient_norm():
    """reuse='scaled': the PSF is mixed at the measured ||PSF||/||g_sam||
    times the current ||g||, fp32 and with an AMP loss scale."""
    policy = ARSAMPolicy(beta=0.5, max_reuse=3, reuse='scaled',
                         stat_layers=1)
    policy.bind(1)
    # g = [3, 4] (norm 5), g_s = g + [1, 0]: PSF [1, 0].
    record_sam_step(policy, [torch.tensor([3.0, 4.0])], [torch.tensor([4.0, 4.0])],
                       None, None)
    grads = [torch.tensor([0.0, 10.0])]  # ||g|| = 10: twice g_sam's
    policy.on_one_pass_step(grads, None, None)
    assert grads[0].tolist() == pytest.approx([0.5 * 2.0, 10.0])
    assert policy.stored_psf()[0].tolist() == pytest.approx([1.0, 0.0])
    scale = torch.tensor(64.0)
    grads = [torch.tensor([0.0, 2.5]) * scale]  # ||g|| = 2.5 unscaled
    policy.on_one_pass_step(grads, scale, None)
    assert (grads[0] / scale).tolist() == pytest.approx([0.25 * 0.5, 2.5])
