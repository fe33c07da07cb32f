"""Switching a run between a plain optimizer and a SAM-family one.

Start sharpness-aware from an SGD/Adam checkpoint (fine-tuning, or SAM on
the last epochs of a plain run) and go back: the base optimizer's state
(momentum buffers, Adam moments and step counts) is kept, every param
group carries the configured ``rho`` again (per group where one was set),
and the run continues at the checkpoint's iteration.
"""
import copy
import itertools

import pytest
import torch
from conftest import build_segmentor, make_runner
from torch import nn

from arsam import ARSAM, SAM, LookSAM

TOTAL, STOP = 8, 4


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(),
                         nn.Linear(8, 3))


def _batches(n=6, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 6, generator=gen),
             torch.randint(0, 3, (16, ), generator=gen)) for _ in range(n)]


def _closure(model, batch):
    inputs, targets = batch

    def closure():
        loss = nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        return loss

    return closure


def _train_plain(model, base, steps=3):
    for batch in itertools.islice(itertools.cycle(_batches()), steps):
        base.zero_grad()
        _closure(model, batch)()
        base.step()


def _two_groups(model, base_cls, first_rho=None, **kwargs):
    """The first layer's parameters and the rest; with ``first_rho`` the
    first group sets its own radius, the other one uses the optimizer's."""
    first = list(model[0].parameters())
    rest = [p for p in model.parameters() if all(p is not q for q in first)]
    own = {} if first_rho is None else dict(rho=first_rho)
    return base_cls([dict(params=first, **own), dict(params=rest)],
                    **kwargs)


def _moments(optimizer):
    return {id(p): {k: v.clone() for k, v in s.items()
                    if isinstance(v, torch.Tensor)}
            for p, s in optimizer.state.items()}


@pytest.mark.parametrize('base_cls,base_args', [
    (torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    (torch.optim.Adam, dict(lr=1e-3)),
], ids=['sgd', 'adam'])
@pytest.mark.parametrize('method', [SAM, ARSAM], ids=['sam', 'arsam'])
def test_plain_checkpoint_into_a_sam_family_optimizer(base_cls, base_args,
                                                      method):
    model = _tiny_model()
    plain = _two_groups(model, base_cls, **base_args)
    _train_plain(model, plain)
    checkpoint = copy.deepcopy(plain.state_dict())
    expected = _moments(plain)

    twin = copy.deepcopy(model)
    base = _two_groups(twin, base_cls, first_rho=0.02, **base_args)
    optimizer = method(twin, base, rho=0.1, max_steps=6)
    optimizer.load_state_dict(checkpoint)
    # The base state is the plain run's, tensor for tensor.
    loaded = _moments(optimizer)
    for (_, want), (_, got) in zip(expected.items(), loaded.items()):
        assert want.keys() == got.keys()
        for key in want:
            assert torch.equal(want[key], got[key]), key
    # The radii are the constructor's: the first group its own.
    assert [g['rho'] for g in optimizer.param_groups] == [0.02, 0.1]
    assert optimizer.param_groups is base.param_groups
    for batch in itertools.islice(itertools.cycle(_batches()), 6):
        optimizer.step(_closure(twin, batch))
        optimizer.zero_grad()
    assert optimizer.engine.total_iters == 6
    # And back: the state dict is torch's shape plus 'sam_state', which a
    # plain optimizer loads as it is.
    state = optimizer.state_dict()
    assert set(state) == {'state', 'param_groups', 'sam_state'}
    back = _two_groups(model, base_cls, **base_args)
    back.load_state_dict(state)
    _train_plain(model, back, steps=1)


def test_a_base_optimizer_loaded_directly_keeps_rho_and_the_groups():
    """Loading into ``optimizer.base_optimizer`` makes new param groups;
    the next step sees them (and rho), and so do LR schedulers."""
    model = _tiny_model()
    plain = _two_groups(model, torch.optim.SGD, lr=0.05, momentum=0.9)
    _train_plain(model, plain)
    base = _two_groups(model, torch.optim.SGD, first_rho=0.02, lr=0.05,
                       momentum=0.9)
    optimizer = SAM(model, base, rho=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)
    base.load_state_dict(plain.state_dict())
    optimizer.step(_closure(model, _batches()[0]))
    scheduler.step()
    assert [g['rho'] for g in base.param_groups] == [0.02, 0.1]
    assert [g['lr'] for g in base.param_groups] == [0.025, 0.025]


def test_a_sam_checkpoint_into_arsam_starts_its_schedule_afresh():
    model = _tiny_model()
    sam = LookSAM(model, torch.optim.SGD(model.parameters(), lr=0.05,
                                         momentum=0.9), rho=0.1, k=2)
    for batch in _batches(3):
        sam.step(_closure(model, batch))
        sam.zero_grad()
    twin = copy.deepcopy(model)
    arsam = ARSAM(twin, torch.optim.SGD(twin.parameters(), lr=0.05,
                                        momentum=0.9), rho=0.1, max_steps=4,
                  window=2, warmup_iters=1, budget=0.5)
    arsam.load_state_dict(sam.state_dict())
    assert arsam.policy.iteration == 0 and arsam.engine.total_iters == 0
    for batch in _batches(4):
        arsam.step(_closure(twin, batch))
        arsam.zero_grad()
    assert arsam.engine.sam_iters == 2  # its own budget: 0.5 of 4 steps


def test_an_unknown_state_dict_is_refused_by_name():
    model = _tiny_model()
    optimizer = ARSAM(model, torch.optim.SGD(model.parameters(), lr=0.1),
                      max_steps=4)
    with pytest.raises(ValueError) as error:
        optimizer.load_state_dict(dict(model=model.state_dict()))
    message = str(error.value)
    assert message.startswith('ARSAM.load_state_dict: ')
    assert "'model'" in message  # what was given
    assert "'state', 'param_groups'" in message  # what is expected
    assert "'sam_state'" in message


# One param group per parameter, as with the switched run's paramwise_cfg
# (torch loads a state only into the same groups).
_PER_PARAM = dict(custom_keys={'decode_head': dict(lr_mult=1.0)})
_PLAIN = dict(type='OptimWrapper', paramwise_cfg=_PER_PARAM,
              optimizer=dict(type='SGD', lr=0.02, momentum=0.9))
_ADAM = dict(type='OptimWrapper', paramwise_cfg=_PER_PARAM,
             optimizer=dict(type='Adam', lr=1e-3))


def _runner(tmp_path, root, wrapper, **kwargs):
    return make_runner(
        tmp_path, build_segmentor(seed=1), root, wrapper, TOTAL,
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=STOP)),
        **kwargs)


@pytest.mark.parametrize('plain', [_PLAIN, _ADAM], ids=['sgd', 'adam'])
@pytest.mark.parametrize('wrapper', [
    dict(type='SAMOptimWrapper', rho=0.05),
    dict(type='ARSAMOptimWrapper', rho=0.05, window=2, warmup_iters=1,
         budget=0.5, seed=3),
], ids=['sam', 'arsam'])
def test_resume_a_plain_run_with_a_sam_family_wrapper(tmp_path, shapes_root,
                                                      plain, wrapper):
    first = _runner(tmp_path / 'plain', shapes_root, plain)
    first.train()
    saved = first.optim_wrapper.optimizer.state_dict()['state']
    wrapper = dict(wrapper, optimizer=plain['optimizer'],
                   paramwise_cfg=dict(custom_keys={'decode_head': dict(
                       lr_mult=1.0, rho=0.02)}))
    resumed = _runner(tmp_path / 'switched', shapes_root, wrapper,
                      resume=True,
                      load_from=str(tmp_path / 'plain' / f'iter_{STOP}.pth'))
    # The base state of the checkpoint reaches the SAM-family wrapper.
    resumed.load_or_resume()
    state = resumed.optim_wrapper.optimizer.state_dict()['state']
    first_param = min(state)
    for key, value in state[first_param].items():
        assert torch.equal(value, torch.load(
            tmp_path / 'plain' / f'iter_{STOP}.pth',
            weights_only=False)['optimizer']['state'][first_param][key]), key
    assert saved  # the plain run kept a state
    resumed.train()
    assert resumed.iter == TOTAL
    optim_wrapper = resumed.optim_wrapper
    rhos = {g['rho'] for g in optim_wrapper.optimizer.param_groups}
    assert rhos == {0.05, 0.02}
    # It drove the iterations after the checkpoint, within its own budget.
    assert optim_wrapper.total_iters == TOTAL - STOP
    expected = TOTAL - STOP if wrapper['type'] == 'SAMOptimWrapper' else 2
    assert optim_wrapper.sam_iters == expected
    # And back to the plain wrapper.
    back = _runner(tmp_path / 'back', shapes_root, plain, resume=True,
                   load_from=str(tmp_path / 'switched' / f'iter_{TOTAL}.pth'),
                   train_cfg=dict(by_epoch=False, max_iters=TOTAL + 2,
                                  val_interval=10**6))
    back.train()
    assert back.iter == TOTAL + 2
