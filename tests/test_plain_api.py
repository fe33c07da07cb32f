"""The plain PyTorch API (``arsam``): no OpenMMLab import, parity with the
textbook SAM step, bit-identity with the mmengine wrapper, state, refusals."""
import copy
import itertools
import os
import subprocess
import sys

import pytest
import torch
from conftest import build_segmentor
from reference_sam import reference_sam_step
from torch import nn

from arsam import ARSAM, ASAM, SAM, LatePhaseSAM, LookSAM

LR, MOMENTUM = 0.05, 0.9


def _closure(model, batch):
    """What a plain loop's closure does with an mmseg model."""

    def closure():
        data = model.data_preprocessor(copy.deepcopy(batch), True)
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        loss.backward()
        return loss

    return closure


def test_import_loads_no_openmmlab_module():
    code = ('import sys, arsam; print(sorted({m.split(".")[0] for m in '
            'sys.modules if m.split(".")[0] in {"mmengine", "mmcv", "mmseg",'
            ' "mmpose", "mmpretrain"}}))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True, env=dict(os.environ))
    assert out.stdout.strip() == '[]', out.stdout


@pytest.mark.parametrize('adaptive', [False, True], ids=['sam', 'asam'])
def test_plain_sam_matches_the_reference(seg_batches, adaptive):
    model = build_segmentor()
    model.train()
    reference = copy.deepcopy(model)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=LR,
                              momentum=MOMENTUM)
    rho = 0.5 if adaptive else 0.05
    cls = ASAM if adaptive else SAM
    optimizer = cls(model, torch.optim.SGD(model.parameters(), lr=LR,
                                           momentum=MOMENTUM), rho=rho)
    for batch in itertools.islice(itertools.cycle(seg_batches), 4):
        data = reference.data_preprocessor(copy.deepcopy(batch), True)
        reference_sam_step(reference, data, ref_opt, rho, adaptive=adaptive)
        optimizer.step(_closure(model, batch))
        optimizer.zero_grad()
    assert optimizer.sam_rate == 1.0
    for (name, a), b in zip(model.state_dict().items(),
                            reference.state_dict().values()):
        if not name.endswith('num_batches_tracked'):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5,
                                       msg=lambda m, k=name: f'{k}: {m}')


def test_plain_arsam_is_bit_identical_to_the_wrapper(seg_batches):
    """The same engine behind both: one run with two-pass and reuse steps,
    through ARSAMOptimWrapper (model.train_step) and through ARSAM
    (step(closure)), ends with the same weights, bit for bit."""
    from mmengine.optim import build_optim_wrapper
    steps, arsam_args = 8, dict(rho=0.05, window=2, warmup_iters=1,
                                budget=0.5, seed=5)
    model = build_segmentor()
    twin = copy.deepcopy(model)
    wrapper = build_optim_wrapper(model, dict(
        type='ARSAMOptimWrapper', **arsam_args,
        optimizer=dict(type='SGD', lr=LR, momentum=MOMENTUM)))
    wrapper.initialize_count_status(model, 0, steps)
    optimizer = ARSAM(twin, torch.optim.SGD(twin.parameters(), lr=LR,
                                            momentum=MOMENTUM),
                      max_steps=steps, **arsam_args)
    model.train(), twin.train()
    for batch in itertools.islice(itertools.cycle(seg_batches), steps):
        model.train_step(copy.deepcopy(batch), wrapper)
        optimizer.step(_closure(twin, batch))
        optimizer.zero_grad()
    assert 1 < wrapper.sam_iters == optimizer.engine.sam_iters < steps
    for (name, a), b in zip(model.state_dict().items(),
                            twin.state_dict().values()):
        assert torch.equal(a, b), name


def _toy(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(),
                          nn.Linear(16, 3))
    x = torch.randn(64, 8)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()

    def closure():
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    return model, closure


@pytest.mark.parametrize('make', [
    lambda m, b: SAM(m, b, rho=0.05),
    lambda m, b: ASAM(m, b),
    lambda m, b: ARSAM(m, b, rho=0.05, max_steps=30),
    lambda m, b: LookSAM(m, b, rho=0.05, k=5, alpha=0.25),
    lambda m, b: LatePhaseSAM(m, b, rho=0.05, share=0.5, max_steps=30),
], ids=['SAM', 'ASAM', 'ARSAM', 'LookSAM', 'LatePhaseSAM'])
def test_each_method_trains_in_a_plain_loop(make):
    model, closure = _toy()
    optimizer = make(model, torch.optim.SGD(model.parameters(), lr=0.1,
                                            momentum=0.9))
    first = float(optimizer.step(closure))
    optimizer.zero_grad()
    for _ in range(29):
        loss = float(optimizer.step(closure))
        optimizer.zero_grad()
    assert loss < 0.5 * first
    assert optimizer.param_groups[0]['rho'] > 0  # rho lives in the groups


def test_state_dict_resumes_exactly():
    """Stopped after 7 of 20 steps and resumed from state_dict(): the same
    weights as the uninterrupted run (schedule, PSF, momentum, stream)."""

    def make(model):
        return ARSAM(model, torch.optim.SGD(model.parameters(), lr=0.1,
                                            momentum=0.9),
                     rho=0.05, max_steps=20, window=4, warmup_iters=2)

    model, closure = _toy()
    full = make(model)
    for step in range(20):
        full.step(closure)
        full.zero_grad()
        if step == 6:
            saved = (copy.deepcopy(model.state_dict()),
                     copy.deepcopy(full.state_dict()))
    resumed_model, resumed_closure = _toy()
    resumed_model.load_state_dict(saved[0])
    resumed = make(resumed_model)
    resumed.load_state_dict(saved[1])
    for _ in range(13):
        resumed.step(resumed_closure)
        resumed.zero_grad()
    assert 0 < full.engine.sam_iters == resumed.engine.sam_iters < 20
    for a, b in zip(model.state_dict().values(),
                    resumed_model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_step_without_a_first_pass_says_how_to_run_one():
    """A GradScaler loop that forgot ``first_pass()`` (or a bare
    ``step()``) is told what the two-step API is."""
    model, _ = _toy()
    optimizer = SAM(model, torch.optim.SGD(model.parameters(), lr=0.1))
    scaler = torch.amp.GradScaler('cpu')
    x = torch.randn(64, 8)
    scaler.scale(model(x).square().mean()).backward()
    with pytest.raises(RuntimeError, match=r'first_pass\(\).*GradScaler'):
        scaler.step(optimizer)
    with pytest.raises(RuntimeError, match='closure'):
        optimizer.step()
    # A two-pass step whose loop did not ask for the second pass.
    with optimizer.first_pass():
        model(x).square().mean().backward()
    with pytest.raises(RuntimeError, match='takes_second_pass'):
        optimizer.step()


def test_bad_arguments_name_the_key():
    model, _ = _toy()
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r'ARSAM\.budgte.*budget'):
        ARSAM(model, base, budgte=0.3)
    with pytest.raises(ValueError, match='stat_tensors'):
        ARSAM(model, base, stat_layers=4)
    with pytest.raises(TypeError, match='optimizer instance'):
        SAM(model, torch.optim.SGD)
    # Range errors of the policy and the engine name the class, not a
    # config key: a plain-PyTorch user has no optim_wrapper.
    with pytest.raises(ValueError, match=r'^ARSAM\.budget: must be > 0'):
        ARSAM(model, base, budget=2)
    with pytest.raises(ValueError, match=r'^SAM\.rho: must be > 0'):
        SAM(model, base, rho=0)


def test_plain_mistakes_are_refused_in_plain_words(caplog):
    model, closure = _toy()
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r'^SAM\.rho: must be a finite'):
        SAM(model, base, rho=float('nan'))
    with pytest.raises(TypeError, match=r'not model\.parameters\(\)'):
        SAM(model.parameters(), base)
    with pytest.raises(ValueError, match=r'^ARSAM\.max_steps: is required'):
        ARSAM(model, base)
    ARSAM(model, base, schedule='paper')  # its cost follows its statistics

    def no_backward():
        return model(torch.randn(4, 8)).square().mean()

    with pytest.raises(RuntimeError, match=r'must call loss\.backward\(\)'):
        SAM(model, base).step(no_backward)
    optimizer = SAM(model, base, max_steps=1)
    with caplog.at_level('WARNING', logger='arsam'):
        for _ in range(2):
            optimizer.step(closure)
            optimizer.zero_grad()
    assert 'past max_steps=1' in caplog.text


def test_plain_errors_name_the_class_exactly():
    """One error model: the check raises (key, problem, fix) and the plain
    API names its class once, at construction and at the first step
    (where exclude meets the model); mmengine's wrappers say
    optim_wrapper. for the same check (test_wrapper_glue.py)."""
    model, closure = _toy()
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    texts = {
        'exclude': (lambda: ARSAM(model, base, exclude='.*',
                                  max_steps=10).step(closure),
                    'ARSAM.exclude: matches every trainable parameter. '
                    'Narrow the regexes so that some parameters are '
                    'perturbed.'),
        'group rho': (lambda: SAM(model, torch.optim.SGD(
            [dict(params=list(model.parameters()), rho=-1.0)], lr=0.1)),
                      'SAM.rho: param group 0: must be >= 0, got -1.0. '
                      'docs/usage.md gives its meaning and default.'),
        'max_steps': (lambda: LatePhaseSAM(model, base),
                      'LatePhaseSAM.max_steps: is required: the two-pass '
                      'steps are a share of the run. Pass the number of '
                      'step() calls of the whole run, e.g. '
                      'max_steps=epochs * len(loader).'),
        'quoted': (lambda: LookSAM(model, base, alpha='0.25'),
                   "LookSAM.alpha: must be a number, got '0.25' (str). "
                   'Write it without quotes, e.g. alpha=0.05.'),
    }
    for case, (build, text) in texts.items():
        with pytest.raises(ValueError) as error:
            build()
        assert str(error.value) == text, case


def test_exclude_sees_names_without_the_compile_prefix(caplog):
    """torch.compile's module wraps the model as ``_orig_mod``: an anchored
    pattern still matches, and one that matches nothing is reported."""

    class Compiled(nn.Module):  # named as torch.compile's OptimizedModule
        def __init__(self, inner):
            super().__init__()
            self._orig_mod = inner

    model, _ = _toy()
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    engine = SAM(Compiled(model), base, exclude=r'^0\.').engine
    engine.bind(Compiled(model))
    first = list(model[0].parameters())
    assert all(all(p is not q for q in first)
               for p in engine.perturbed.perturbed)
    with caplog.at_level('WARNING', logger='arsam'):
        SAM(model, base, exclude=['^0\\.', 'nothing']).engine.bind(model)
    assert "'nothing' matches no trainable parameter" in caplog.text
