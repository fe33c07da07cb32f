"""States of earlier releases load (``arsam/migrations.py``): the release
0.1 checkpoint's ARSAM state, translated, is the same state in this
release's form, value for value; engine states without ``policy_type``
name their policy; the plain optimizer's 0.3 state dict loads."""
from pathlib import Path

import pytest
import torch

from arsam import ARSAM, SAM
from arsam.migrations import arsam_policy_state, engine_state_policy_type
from arsam.policies import (
    AESAMPolicy,
    AlwaysSAMPolicy,
    ARSAMPolicy,
    LookSAMPolicy,
    PeriodicSAMPolicy,
    RandomSAMPolicy,
)

RELEASE_0_1 = Path(__file__).parent / 'data' / 'release_0.1'


def _sam_state_0_1():
    checkpoint = torch.load(RELEASE_0_1 / 'arsam_iter_7.pth',
                            weights_only=False)
    return checkpoint['optimizer']['sam_state']


def test_the_release_0_1_arsam_state_is_translated_value_for_value():
    old = _sam_state_0_1()
    assert 'policy_type' not in old
    assert engine_state_policy_type(old) == 'ARSAMPolicy'
    flat = old['policy']
    policy = ARSAMPolicy(psf_average=1.0)
    policy.bind(len(flat['psf']))
    policy.load_state_dict(flat)
    assert policy.iteration == flat['iteration']
    assert policy.window_target == flat['rate']
    windows = policy.schedule_rule.windows
    assert (windows.pos, windows.started, windows.quota_left) == (
        flat['window_pos'], flat['windows_started'], flat['quota_left'])
    assert policy.schedule_rule.budget.state_dict() == flat['budget']
    # 0.1 kept g - g_s under 'psf' with its psf_scale (-1).
    assert flat['psf_scale'] == -1.0
    for got, want in zip(policy.stored_psf(), flat['psf']):
        assert torch.equal(got, -want)
    assert (policy.reuse.reuse_count, policy.reuse.coef) == (
        flat['reuse_count'], flat['coef'])
    assert torch.equal(policy.generator.get_state(), flat['generator'])
    for key in ('r', 's', 'v'):
        got, want = policy.statistics.history[key], flat['history'][key]
        assert got is want is None or torch.equal(got, want), key
    assert policy.statistics.counts == flat['counts']
    # Saved again, it is this release's nested form, and loads as is.
    nested = policy.state_dict()
    assert {'windows', 'budget', 'reuse', 'statistics'} <= set(nested)
    assert arsam_policy_state(nested) is nested
    again = ARSAMPolicy(psf_average=1.0)
    again.bind(len(flat['psf']))
    again.load_state_dict(nested)
    assert again.window_target == policy.window_target
    assert torch.equal(again.generator.get_state(),
                       policy.generator.get_state())


@pytest.mark.parametrize('policy', [
    AlwaysSAMPolicy(), ARSAMPolicy(), LookSAMPolicy(), AESAMPolicy(),
    RandomSAMPolicy(), PeriodicSAMPolicy()
], ids=lambda p: type(p).__name__)
def test_a_state_without_policy_type_names_its_policy(policy):
    """States of 0.1 and 0.2 did not save ``policy_type``: their keys say
    which policy wrote them (release 0.2 had no late-phase SAM)."""
    policy.bind(1)
    state = dict(policy=policy.state_dict(), sam_iters=0, total_iters=0)
    assert engine_state_policy_type(state) == type(policy).__name__
    with pytest.raises(ValueError, match='unknown policy'):
        engine_state_policy_type(dict(policy=dict(moment=1)))


def _toy():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 2))
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16, ))

    def closure():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    return model, closure


def test_the_plain_optimizer_loads_its_release_0_3_state_dict():
    model, closure = _toy()
    optimizer = ARSAM(model, torch.optim.SGD(model.parameters(), lr=0.1,
                                             momentum=0.9),
                      max_steps=10, budget=0.5, warmup_iters=1)
    for _ in range(4):
        optimizer.step(closure)
        optimizer.zero_grad()
    state = optimizer.state_dict()
    assert set(state) == {'state', 'param_groups', 'sam_state'}
    # Release 0.3 wrote {'base': torch's, 'sharpness_aware': the engine's}.
    old = dict(base={k: state[k] for k in ('state', 'param_groups')},
               sharpness_aware=state['sam_state'])
    for given in (state, old):
        twin = ARSAM(model, torch.optim.SGD(model.parameters(), lr=0.1,
                                            momentum=0.9),
                     max_steps=10, budget=0.5, warmup_iters=1)
        twin.load_state_dict(given)
        assert twin.engine.total_iters == 4
        assert twin.state_dict()['sam_state']['policy']['iteration'] == 4
    # Another method's state: the base state only, logged.
    sam = SAM(model, torch.optim.SGD(model.parameters(), lr=0.1,
                                     momentum=0.9))
    sam.load_state_dict(state)
    assert sam.engine.total_iters == 0
