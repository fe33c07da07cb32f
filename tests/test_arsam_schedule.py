"""ARSAM's schedule and reuse rule against hand-computed values."""
import copy
import math

import numpy as np
import pytest
import torch
from conftest import build_segmentor, record_sam_step
from reference_sam import reference_sam_step

from arsam.policies import build_policy
from arsam_mm.optim import ARSAMPolicy


def _drive(policy, psf_values, iters):
    """Run the policy with g = [1] and PSF values taken in turn (a budget
    policy is told the run is ``iters`` long)."""
    policy.bind(1)
    if policy.schedule == 'budget':
        policy.on_train_start(iters)
    decisions, used = [], []
    values = iter(psf_values)
    for _ in range(iters):
        two = policy.take_two_passes()
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
                         schedule='paper')
    decisions, _ = _drive(policy, np.linspace(1, 2, 100), 17)
    assert decisions[:7] == [True] * 7
    assert sum(decisions[7:17]) == 1  # floor(initial rate 1)


def test_paper_rate_update_and_quota_match_hand_computation():
    window, a1, a2, blocks = 6, 0.5, 0.3, 2
    psf_values = [0.5, 0.6, 0.9, 1.0, 1.4, 2.0, 2.1, 2.5, 3.0, 3.2, 3.9, 4.4,
                  5.0, 5.5, 6.1, 7.0, 8.0, 9.0, 10.0, 11.0]
    policy = ARSAMPolicy(window=window, warmup_iters=window, a1=a1, a2=a2,
                         blocks=blocks, stat_tensors=1, max_p=1.0, seed=11,
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
    assert policy.window_target == pytest.approx(rates[-1], rel=1e-5)
    assert rates[1] > 1.0  # the PSF grew: the schedule asked for more SAM
    for w, rate in enumerate(rates):
        block = decisions[window * (w + 1):window * (w + 2)]
        assert sum(block) == math.floor(rate)


def test_rate_is_clipped_to_max_p():
    for schedule in ('paper',):
        policy = ARSAMPolicy(window=5, warmup_iters=5, a1=10.0, a2=10.0,
                             max_p=0.6, stat_tensors=1, blocks=1,
                             schedule=schedule)
        _drive(policy, [2.0**k for k in range(200)], 60)
        assert policy.window_target == pytest.approx(3.0)


def test_budget_schedule_takes_block_variances_from_full_histories():
    # Stationary PSF norms: nothing about the PSF changes. Block variances
    # of a filling s history grow with the count alone, so v must start
    # only once s holds a full window of values.
    window, blocks = 10, 2
    rng = np.random.default_rng(0)
    values = np.exp(rng.normal(0.0, 0.3, 400))
    policy = ARSAMPolicy(window=window, warmup_iters=window, blocks=blocks,
                         stat_tensors=1, seed=0)
    _drive(policy, values, window * 12)
    counts = policy.statistics.counts
    assert counts['s'] > window
    assert counts['v'] == counts['s'] - window + 1
    paper = ARSAMPolicy(window=window, warmup_iters=window, blocks=blocks,
                        stat_tensors=1, seed=0, schedule='paper')
    _drive(paper, values, window * 12)
    counts = paper.statistics.counts
    assert counts['v'] == counts['s'] - 2 * blocks + 1


@pytest.mark.parametrize('kwargs, key', [
    (dict(schedule='fast'), 'schedule'),
    (dict(schedule='relative'), 'schedule'),
    (dict(budget=1.5), 'budget'),
    (dict(budget=0), 'budget'),
    (dict(schedule='paper', budget=0.2), 'budget'),
    (dict(placement='early'), 'placement'),
    (dict(placement='front'), "placement='front' was removed.*tail"),
    (dict(placement='late'), "placement='late' was removed.*tail"),
    (dict(tail=1.0), 'tail'),
    (dict(schedule='paper', tail=0.5), 'tail'),
])
def test_schedule_arguments_are_checked(kwargs, key):
    """As every front end builds the policy (build_policy: a removed value
    is refused with what to write instead, migrations.py)."""
    with pytest.raises((ValueError, TypeError), match=key):
        build_policy(ARSAMPolicy, dict(kwargs))


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
    the AMP loss scale, and a checkpoint from before psf_scale loads
    (the last PSF alone: psf_average=1)."""
    policy = ARSAMPolicy(psf_average=1.0)
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
    assert grads[1].tolist() == pytest.approx([policy.reuse.beta * 0.5 * 4.0])

    nested = policy.state_dict()
    # A 0.1 checkpoint: one flat dict, the store under 'psf' (unscaled),
    # the target under 'rate', no psf_scale.
    state = dict(nested['windows'], iteration=nested['iteration'],
                 budget=nested['budget'], changes=nested['changes'],
                 generator=nested['generator'], **nested['statistics'],
                 reuse_count=nested['reuse']['reuse_count'],
                 coef=nested['reuse']['coef'])
    state['psf'] = [torch.tensor([3.0, 3.0]), torch.tensor([0.5])]
    state['rate'] = state.pop('window_target')
    old = ARSAMPolicy(psf_average=1.0)
    old.bind(2)
    old.load_state_dict(state)
    assert [t.tolist() for t in old.stored_psf()] == [[3.0, 3.0], [0.5]]


def test_psf_average_mixes_a_running_mean_of_the_psfs():
    """psf_average=a: the stored PSF moves a of the way to each new one
    (AMP scales and a tensor without a gradient included), and resumes
    from its state."""
    policy = ARSAMPolicy(psf_average=0.25)
    policy.bind(2)
    zeros = [torch.zeros(2), torch.zeros(1)]
    record_sam_step(policy, [t.clone() for t in zeros],
                    [torch.tensor([4.0, 0.0]), torch.tensor([8.0])])
    assert [t.tolist() for t in policy.stored_psf()] == [[4.0, 0.0], [8.0]]
    # The first gradient is kept apart: the mean is not overwritten by g.
    first = [torch.ones(2) * 1024.0, torch.ones(1) * 1024.0]
    record_sam_step(policy, first,
                    [torch.tensor([1.0, 9.0]) * 1024.0, torch.tensor([1.0]) * 1024.0],
                    torch.tensor(1024.0))
    stored = policy.stored_psf()
    assert stored[0].tolist() == pytest.approx([3.0, 2.0])  # 4 + (0 - 4)/4, 0 + 8/4
    assert stored[1].tolist() == pytest.approx([6.0])  # 8 + (0 - 8)/4
    record_sam_step(policy, [torch.zeros(2)], [torch.tensor([7.0, 2.0]) * 512.0],
                    torch.tensor(512.0), [0])  # tensor 1 has no gradient
    stored = policy.stored_psf()
    assert stored[0].tolist() == pytest.approx([4.0, 2.0])
    assert stored[1].tolist() == pytest.approx([6.0])
    grads = [torch.zeros(2), torch.zeros(1)]
    policy.on_one_pass_step(grads, None, None)
    assert grads[1].tolist() == pytest.approx([policy.reuse.beta * 6.0])
    state = copy.deepcopy(policy.state_dict())
    # A non-finite SAM step mixes nothing until the next one; the mean,
    # which it did not touch, stays.
    policy.reuse.drop()
    grads = [torch.zeros(2), torch.zeros(1)]
    policy.on_one_pass_step(grads, None, None)
    assert grads[1].tolist() == [0.0]
    assert policy.stored_psf()[1].tolist() == pytest.approx([6.0])
    resumed = ARSAMPolicy(psf_average=0.25)
    resumed.bind(2)
    resumed.load_state_dict(state)
    record_sam_step(resumed, [t.clone() for t in zeros],
                    [torch.tensor([0.0, 2.0]), torch.tensor([2.0])])
    assert resumed.stored_psf()[0].tolist() == pytest.approx([3.0, 2.0])
    assert resumed.stored_psf()[1].tolist() == pytest.approx([5.0])


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


@pytest.mark.parametrize('max_iters', [480, 2400])
def test_a_tail_takes_its_share_of_the_budget_at_the_end(max_iters):
    """tail=0.5: half the budget is SAM on the run's last iterations, the
    other half (warm-up included) placed as before; the total unchanged."""
    decisions = _sam_iterations(max_iters, tail=0.5)
    total = int(0.2 * max_iters)
    assert decisions.sum() == total
    tail = total // 2
    assert decisions[-tail:].all()
    assert decisions[:-tail].sum() == total - tail
    if max_iters > 1000:  # room to spread beyond the warm-up
        assert decisions[50:-tail].sum() > 0


@pytest.mark.parametrize('budget', [0.1, 0.35])
def test_budget_is_a_share_of_the_run(budget):
    decisions = _sam_iterations(3000, budget=budget, window=20, seed=4)
    assert decisions.sum() == int(budget * 3000)


def test_budget_placements_move_sam_iterations_not_their_count():
    halves = {}
    for placement in ('adaptive', 'uniform'):
        decisions = _sam_iterations(4000, placement=placement)
        assert decisions.sum() == 800
        halves[placement] = decisions[:2000].sum()
    # The growing PSF asks for SAM iterations sooner than an even spread.
    assert halves['adaptive'] > halves['uniform']


def test_budget_cuts_a_warmup_longer_than_itself():
    decisions = _sam_iterations(100, budget=0.1, warmup_iters=50)
    assert decisions.tolist() == [True] * 10 + [False] * 90


def test_budget_needs_the_run_length():
    from arsam.policies.budget import RunLengthUnknownError
    policy = ARSAMPolicy()
    policy.bind(1)
    with pytest.raises(RunLengthUnknownError, match='budget'):
        policy.take_two_passes()


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
        head.append(policy.take_two_passes())
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
        tail.append(resumed.take_two_passes())
        if tail[-1]:
            k = sum(head) + sum(tail) - 1
            record_sam_step(resumed, [torch.ones(1)],
                                [torch.tensor([1.0 + values[k]])], None, None)
    assert head + tail == full.tolist()


