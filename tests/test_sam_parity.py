"""SAM/ASAM/ARSAM through a real Runner against a plain-PyTorch reference."""
import copy
import itertools

import pytest
import torch
from conftest import build_segmentor, make_runner
from reference_sam import reference_sam_step

STEPS = 5
LR, MOMENTUM, WD = 0.05, 0.9, 1e-3


PARAMWISE = dict(norm_decay_mult=0.0, bias_decay_mult=0.0)


def _norm_or_bias(model, paramwise_cfg=PARAMWISE):
    from mmengine.optim import DefaultOptimWrapperConstructor
    # Ask mmengine which parameters it puts in zero-decay groups.
    ctor = DefaultOptimWrapperConstructor(
        dict(type='OptimWrapper',
             optimizer=dict(type='SGD', lr=LR, momentum=MOMENTUM,
                            weight_decay=WD)), paramwise_cfg)
    wrapper = ctor(model)
    zero = set()
    for group in wrapper.optimizer.param_groups:
        if group['weight_decay'] == 0.0:
            zero.update(id(p) for p in group['params'])
    return zero


def _run_reference(model, batches, steps, paramwise_cfg=PARAMWISE,
                   **sam_kwargs):
    zero = _norm_or_bias(model, paramwise_cfg)
    optimizer = torch.optim.SGD([
        dict(params=[p for p in model.parameters() if id(p) not in zero],
             weight_decay=WD),
        dict(params=[p for p in model.parameters() if id(p) in zero],
             weight_decay=0.0),
    ], lr=LR, momentum=MOMENTUM)
    model.train()
    for batch in itertools.islice(itertools.cycle(batches), steps):
        data = model.data_preprocessor(copy.deepcopy(batch), True)
        reference_sam_step(model, data, optimizer, **sam_kwargs)


def _run_wrapper(tmp_path, model, root, wrapper_cfg, steps):
    optim_wrapper = dict(
        dict(optimizer=dict(type='SGD', lr=LR, momentum=MOMENTUM,
                            weight_decay=WD), paramwise_cfg=PARAMWISE),
        **wrapper_cfg)
    runner = make_runner(tmp_path, model, root, optim_wrapper, steps)
    runner.train()
    return runner


def _assert_same_state(a, b, atol):
    sa, sb = a.state_dict(), b.state_dict()
    for key in sa:
        if key.endswith('num_batches_tracked'):
            continue
        torch.testing.assert_close(sa[key], sb[key], rtol=1e-5, atol=atol,
                                   msg=lambda m, k=key: f'{k}: {m}')


@pytest.mark.parametrize('case', [
    dict(wrapper=dict(type='SAMOptimWrapper', rho=0.05), ref=dict(rho=0.05)),
    dict(wrapper=dict(type='SAMOptimWrapper', rho=0.5, adaptive=True),
         ref=dict(rho=0.5, adaptive=True)),
    dict(wrapper=dict(type='SAMOptimWrapper', rho=0.05,
                      exclude=r'decode_head', clip_grad=dict(max_norm=0.5)),
         ref=dict(rho=0.05, clip_norm=0.5), exclude='decode_head'),
], ids=['sam', 'asam', 'sam-exclude-clip'])
def test_sam_matches_plain_pytorch(tmp_path, shapes_root, seg_batches, case):
    model = build_segmentor()
    reference = copy.deepcopy(model)
    excluded = {id(p) for n, p in reference.named_parameters()
                if case.get('exclude', '~') in n}
    _run_reference(reference, seg_batches, STEPS, excluded=excluded,
                   **case['ref'])
    runner = _run_wrapper(tmp_path, model, shapes_root, case['wrapper'],
                          STEPS)
    assert runner.optim_wrapper.sam_iters == STEPS
    _assert_same_state(model, reference, atol=1e-5)
    # The check has teeth: plain SGD over the same batches ends elsewhere.
    sgd = copy.deepcopy(build_segmentor())
    _run_wrapper(tmp_path / 'sgd', sgd, shapes_root,
                 dict(type='OptimWrapper'), STEPS)
    with pytest.raises(AssertionError):
        _assert_same_state(sgd, reference, atol=1e-5)


def test_arsam_equals_sam_while_all_iterations_are_sam(tmp_path, shapes_root):
    sam_model, arsam_model = build_segmentor(), build_segmentor()
    _run_wrapper(tmp_path / 'sam', sam_model, shapes_root,
                 dict(type='SAMOptimWrapper', rho=0.05), STEPS)
    runner = _run_wrapper(tmp_path / 'arsam', arsam_model, shapes_root,
                          dict(type='ARSAMOptimWrapper', rho=0.05,
                               warmup_iters=STEPS, budget=1.0), STEPS)
    assert runner.optim_wrapper.sam_iters == STEPS
    for (name, a), b in zip(sam_model.state_dict().items(),
                            arsam_model.state_dict().values()):
        assert torch.equal(a, b), name


def test_rho_per_param_group_matches_plain_pytorch(tmp_path, shapes_root,
                                                  seg_batches):
    """rho as a param-group value (paramwise_cfg custom_keys): one global
    norm over the tensors with rho > 0, each perturbed by its group's rho;
    a group with rho = 0 is not perturbed."""
    custom = {'decode_head': dict(rho=0.2), 'backbone.layer1': dict(rho=0.0)}
    paramwise = dict(PARAMWISE, custom_keys=custom)
    model = build_segmentor()
    reference = copy.deepcopy(model)
    rho_of = {id(p): rho['rho'] for n, p in reference.named_parameters()
              for key, rho in custom.items() if key in n}
    _run_reference(reference, seg_batches, STEPS, paramwise_cfg=paramwise,
                   rho=0.05, rho_of=rho_of)
    runner = _run_wrapper(tmp_path, model, shapes_root,
                          dict(type='SAMOptimWrapper', rho=0.05,
                               paramwise_cfg=paramwise), STEPS)
    groups = runner.optim_wrapper.param_groups
    assert {g['rho'] for g in groups} == {0.0, 0.05, 0.2}
    _assert_same_state(model, reference, atol=1e-5)
    # Teeth: the same run with one rho for every group ends elsewhere.
    uniform = copy.deepcopy(build_segmentor())
    _run_wrapper(tmp_path / 'uniform', uniform, shapes_root,
                 dict(type='SAMOptimWrapper', rho=0.05), STEPS)
    with pytest.raises(AssertionError):
        _assert_same_state(uniform, reference, atol=1e-5)
