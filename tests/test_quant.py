"""LSQ fake quantization and FakeQuantHook with the SAM-family wrappers."""
import copy
import math
import os.path as osp
import re
import subprocess
import sys
import types

import onnx
import pytest
import torch
import torch.nn.functional as F
from conftest import (
    build_segmentor,
    make_runner,
    shapes_loader_cfg,
    tiny_segmentor_cfg,
)
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.optim import build_optim_wrapper
from mmengine.runner import load_checkpoint
from torch.nn.modules.batchnorm import _BatchNorm

from arsam._checks import ConfigError
from arsam.sam_math import global_norm
from arsam_mm.hooks import FakeQuantHook
from arsam_mm.hooks.fake_quant_hook import MIN_STEP
from arsam_mm.quant import lsq_fake_quant, lsq_init_step, lsq_to_int, quant_range


@pytest.mark.parametrize('bits, signed', [(2, True), (4, False), (8, True)])
def test_fake_quant_matches_closed_form_and_lsq_gradients(bits, signed):
    torch.manual_seed(bits)
    qn, qp = quant_range(bits, signed)
    x = (torch.randn(4, 3, 5, 5) * 2).requires_grad_()
    step = torch.tensor(0.3, requires_grad=True)
    y = lsq_fake_quant(x, step, qn, qp)
    closed = torch.clamp(torch.round(x.detach() / 0.3), qn, qp) * 0.3
    assert torch.equal(y.detach(), closed)
    upstream = torch.randn_like(y)
    y.backward(upstream)
    v = x.detach() / 0.3
    inside = (v > qn) & (v < qp)
    # LSQ, eq. 3 and section 2.2: STE for x, the step's gradient scaled by
    # 1 / sqrt(numel * Qp).
    torch.testing.assert_close(x.grad, upstream * inside)
    dstep = torch.where(inside, torch.round(v) - v,
                        torch.where(v <= qn, torch.tensor(float(qn)),
                                    torch.tensor(float(qp))))
    want = (upstream * dstep).sum() / math.sqrt(x.numel() * qp)
    torch.testing.assert_close(step.grad, want, rtol=1e-4, atol=1e-6)


def test_per_channel_steps_and_integer_round_trip():
    torch.manual_seed(0)
    weight = torch.randn(6, 3, 3, 3)
    qn, qp = quant_range(4, True)
    step = lsq_init_step(weight, qp, dim=0).view(6, 1, 1, 1)
    want = 2 * weight.abs().flatten(1).mean(1) / math.sqrt(qp)
    torch.testing.assert_close(step.flatten(), want)
    ints = lsq_to_int(weight, step, qn, qp)
    assert ints.dtype == torch.int8 and ints.min() >= qn and ints.max() <= qp
    assert torch.equal(ints.float() * step,
                       lsq_fake_quant(weight, step, qn, qp))


@pytest.mark.parametrize('kwargs, key', [
    (dict(w_bits=1), 'w_bits'), (dict(a_bits=9), 'a_bits'),
    (dict(types=['Conv3d']), 'types'), (dict(first_last_bits=16),
                                         'first_last_bits'),
    (dict(perturb='weights'), 'perturb')])
def test_bad_hook_settings_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=f'FakeQuantHook.{key}'):
        FakeQuantHook(**kwargs)


@pytest.mark.parametrize('key', ['skip', 'output_layers'])
def test_a_bad_layer_regex_is_refused_when_the_hook_is_built(key):
    """Before any model is touched (the swap gets compiled patterns), as
    a ConfigError naming the hook's key and the fix."""
    with pytest.raises(ConfigError, match=rf"^FakeQuantHook\.{key}: "
                       r"'backbone\.\(' is not a valid regex .*backslash"):
        FakeQuantHook(**{key: ['backbone.(']})


def test_quantize_keeps_parameter_objects():
    model = build_segmentor()
    before = {name: p for name, p in model.named_parameters()}
    layers = FakeQuantHook(w_bits=4, a_bits=4).quantize(model)
    assert len(layers) > 10
    after = dict(model.named_parameters())
    for name, param in before.items():
        assert after[name] is param
    assert layers[0].w_bits == 8 and layers[1].w_bits == 4  # first at 8
    assert model.decode_head.conv_seg.w_bits == 8  # the head's output
    assert sum(m.w_bits == 8 for m in layers) == 2
    copied = copy.deepcopy(model)  # e.g. benchmark_step, EMA: still steps
    assert all(getattr(p, 'lsq_step', False) == n.endswith('_step')
               for n, p in copied.named_parameters())


def _quant_runner(tmp_path, root, iters, **kwargs):
    return make_runner(
        tmp_path, build_segmentor(seed=2), root,
        dict(type='ARSAMOptimWrapper', rho=0.05, window=3, warmup_iters=2,
             budget=0.5, optimizer=dict(type='SGD', lr=0.02, momentum=0.9,
                                        weight_decay=1e-3)),
        iters, custom_hooks=[dict(type='FakeQuantHook', w_bits=4, a_bits=4)],
        **kwargs)


class _StepSnapshot(Hook):
    """Step sizes right after the first iteration (initialised, 1 update)."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == 1:
            self.values = {n: p.detach().clone()
                           for n, p in runner.model.named_parameters()
                           if n.endswith('_step')}


def test_quantized_arsam_trains_and_never_perturbs_steps(tmp_path,
                                                         shapes_root):
    runner = _quant_runner(tmp_path, shapes_root, 8)
    snapshot = _StepSnapshot()
    runner.register_hook(snapshot)
    runner.train()
    model, wrapper = runner.model, runner.optim_wrapper
    steps = {n: p for n, p in model.named_parameters() if n.endswith('_step')}
    assert steps and all(getattr(p, 'lsq_step', False)
                         for p in steps.values())
    perturbed = {id(p) for p in wrapper.engine.perturbed.perturbed}
    assert not any(id(p) in perturbed for p in steps.values())
    assert wrapper.sam_iters >= 2
    group = wrapper.optimizer.param_groups[-1]
    assert group['weight_decay'] == 0.0 and len(group['params']) == len(steps)
    assert all(bool(m.quant_initialized) for m in model.modules()
               if hasattr(m, 'quant_initialized'))
    changed = [not torch.equal(p, snapshot.values[n])
               for n, p in steps.items()]
    assert sum(changed) > 0.5 * len(changed)  # the step sizes learn
    assert all(bool((p > 0).all()) for p in steps.values())


def test_quantized_resume_is_exact(tmp_path, shapes_root):
    whole = _quant_runner(
        tmp_path / 'whole', shapes_root, 8,
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=4)))
    whole.train()
    resumed = _quant_runner(
        tmp_path / 'resumed', shapes_root, 8, resume=True,
        load_from=str(tmp_path / 'whole' / 'iter_4.pth'))
    resumed.train()
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert any(k.endswith('weight_step') for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _reference_saq_step(model, data, optimizer, rho):
    """SAQ by hand: e from dL/dQ(w) (quantized layers) and dL/dp (the
    rest), added to Q(w) resp. to p, step sizes never perturbed."""
    layers = [m for m in model.modules() if hasattr(m, 'weight_step')]
    quantized, offsets = {}, {}

    def forward(self, x):
        x, weight = self._quantized_inputs(x)
        if self in offsets:
            weight = weight + offsets[self]
        else:
            weight.retain_grad()
            quantized[self] = weight
        if isinstance(self, torch.nn.Conv2d):
            return self._conv_forward(x, weight, self.bias)
        return F.linear(x, weight, self.bias)

    for layer in layers:
        layer.forward = types.MethodType(forward, layer)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    by_weight = {id(m.weight): m for m in layers}
    perturbed = [p for p in model.parameters()
                 if p.grad is not None and not getattr(p, 'lsq_step', False)]
    grads = [quantized[by_weight[id(p)]].grad if id(p) in by_weight
             else p.grad for p in perturbed]
    # The norm as sam_math takes it: float32 rounding differences would be
    # amplified by the 4-bit activation rounding downstream.
    norm = global_norm(grads)
    saved = {}
    with torch.no_grad():
        for p, g in zip(perturbed, grads):
            e = g * (rho / (norm + 1e-12))
            if id(p) in by_weight:
                offsets[by_weight[id(p)]] = e
            else:
                saved[p] = p.clone()
                p.add_(e)
    optimizer.zero_grad()
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.momentum = 0.0
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    with torch.no_grad():
        for p, weight in saved.items():
            p.copy_(weight)
    optimizer.step()


def test_saq_mode_perturbs_the_quantized_weights(seg_batches):
    """perturb='quantized' against a hand-written SAQ step: the latent
    weights of quantized layers stay put, Q(w) moves along dL/dQ(w)."""
    model = build_segmentor(seed=3)
    # 2-bit weights: clipped ones make dL/dQ(w) and dL/dw differ.
    hook = FakeQuantHook(w_bits=2, a_bits=4, perturb='quantized')
    hook.quantize(model)
    model.train()
    with torch.no_grad():  # LSQ initialisation, the same in both copies
        model(**model.data_preprocessor(copy.deepcopy(seg_batches[0]), True),
              mode='loss')
    reference = copy.deepcopy(model)
    wrapper = build_optim_wrapper(model, dict(
        type='SAMOptimWrapper', rho=0.5,
        optimizer=dict(type='SGD', lr=0.1)))
    model.train_step(copy.deepcopy(seg_batches[1]), wrapper)
    for layer in reference.modules():
        if hasattr(layer, 'weight_step'):
            layer.perturb_quantized = False  # the hand-written path
    data = reference.data_preprocessor(copy.deepcopy(seg_batches[1]), True)
    _reference_saq_step(reference, data,
                        torch.optim.SGD(reference.parameters(), lr=0.1),
                        rho=0.5)
    ours, want = dict(model.named_parameters()), dict(
        reference.named_parameters())
    for name, param in ours.items():
        torch.testing.assert_close(param, want[name], rtol=1e-5, atol=1e-6,
                                   msg=lambda m, k=name: f'{k}: {m}')


def test_export_tool_integer_and_onnx_round_trip(tmp_path, shapes_root):
    """tools/export_quantized.py on a trained quantized checkpoint: the
    dequantized integers equal the fake-quant weights exactly; the ONNX
    graph stores them as int8 with BatchNorm folded, takes the pipeline's
    pixels, and reproduces the PyTorch fake-quant model in onnxruntime."""
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    runner = _quant_runner(
        tmp_path, shapes_root, 3,
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=3)))
    runner.train()
    config = tmp_path / 'quantized.py'
    Config(dict(
        model=tiny_segmentor_cfg(), default_scope='mmseg',
        custom_imports=dict(imports=['arsam_mm']),
        custom_hooks=[dict(type='FakeQuantHook', w_bits=4, a_bits=4)],
        test_dataloader=shapes_loader_cfg(shapes_root, 'val'),
        test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
    )).dump(str(config))
    ckpt = str(tmp_path / 'iter_3.pth')
    out = subprocess.run(
        [sys.executable, osp.join(root, 'tools', 'export_quantized.py'),
         str(config), ckpt, '--onnx', '--float-onnx'],
        capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    printed = out.stdout
    assert 'weights stored as int8' in printed, printed
    assert re.search(r'OK: onnxruntime is [\d.]+ points', printed), printed

    exported = torch.load(ckpt[:-4] + '_int.pth', weights_only=False)
    model = build_segmentor()
    FakeQuantHook(w_bits=4, a_bits=4).quantize(model)
    load_checkpoint(model, ckpt, map_location='cpu', strict=True)
    modules = dict(model.named_modules())
    quantized = [m for m in modules.values() if hasattr(m, 'weight_step')]
    assert len(exported['layers']) == len(quantized)
    for name, layer in exported['layers'].items():
        module = modules[name]
        qn, qp = quant_range(layer['w_bits'], True)
        assert layer['weight_int'].min() >= qn
        assert layer['weight_int'].max() <= qp
        assert torch.equal(
            layer['weight_int'].float() * layer['weight_step'],
            lsq_fake_quant(module.weight, module.weight_step, qn, qp))

    path = ckpt[:-4] + '_qdq.onnx'
    graph = onnx.load(path).graph
    nodes = [n.op_type for n in graph.node]
    dtypes = {i.name: i.data_type for i in graph.initializer}
    weights = [n.input[0] for n in graph.node
               if n.op_type == 'DequantizeLinear' and n.input[0] in dtypes]
    assert len(weights) == len(quantized)
    assert {dtypes[w] for w in weights} == {onnx.TensorProto.INT8}
    assert nodes.count('QuantizeLinear') == len(quantized)  # inputs only
    assert 'BatchNormalization' not in nodes
    float_size = osp.getsize(ckpt[:-4] + '_float.onnx')
    assert osp.getsize(path) < 0.4 * float_size
    # Element by element the graph is checked in test_onnx_graph.py; here
    # a model of twenty 4-bit layers after 3 iterations: the folded
    # BatchNorms round a few activations one step apart, which the
    # tool's metric check above judges.


class _AtFirstIter(Hook):
    """The model as the first training iteration receives it."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == 0:
            self.state = {k: v.clone()
                          for k, v in runner.model.state_dict().items()}


def test_export_check_default_tolerance():
    """0.5 points, except for class scores on few images: there a net gap
    of three images is allowed (a near-tie image may turn either way); a
    wrong graph moves far more (tests/test_learning.py)."""
    from arsam_mm.quant.deploy_check import default_tolerance
    assert default_tolerance(dict(images=4, differ=None))[0] == 0.5  # mIoU
    assert default_tolerance(dict(images=10000, differ=9))[0] == 0.5
    assert default_tolerance(dict(images=600, differ=0))[0] == 0.5
    value, why = default_tolerance(dict(images=150, differ=2))
    assert value == 2.0 and why == '2.00: three of 150 images'


def test_quantized_run_loads_a_float_checkpoint(tmp_path, shapes_root):
    """load_from a full-precision checkpoint: its weights arrive in the
    quantized layers, the step sizes (new keys) start from the first batch."""
    float_run = make_runner(
        tmp_path / 'float', build_segmentor(seed=4), shapes_root,
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02)), 2,
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=2)))
    float_run.train()
    ckpt = tmp_path / 'float' / 'iter_2.pth'
    trained = torch.load(ckpt, weights_only=False)['state_dict']
    runner = _quant_runner(tmp_path / 'quant', shapes_root, 2,
                           load_from=str(ckpt))
    first = _AtFirstIter()
    runner.register_hook(first)
    runner.train()
    for key, value in trained.items():
        if not key.endswith('num_batches_tracked'):
            assert torch.equal(first.state[key], value), key
    flags = [v for k, v in first.state.items()
             if k.endswith('quant_initialized')]
    assert flags and not any(bool(f) for f in flags)  # init at batch one
    assert all(bool(m.quant_initialized) for m in runner.model.modules()
               if hasattr(m, 'quant_initialized'))


def test_step_sizes_stay_positive_under_adam(tmp_path, shapes_root):
    """Adam moves every step size by ~lr per update whatever its size; the
    hook keeps them above zero (a non-positive step flips the quantizer)."""
    runner = make_runner(
        tmp_path, build_segmentor(seed=2), shapes_root,
        dict(type='ARSAMOptimWrapper', rho=0.05, warmup_iters=2,
             optimizer=dict(type='Adam', lr=0.05)),
        6, custom_hooks=[dict(type='FakeQuantHook', w_bits=4, a_bits=4)])
    runner.train()
    steps = torch.cat([p.detach().flatten()
                       for n, p in runner.model.named_parameters()
                       if n.endswith('_step')])
    assert bool((steps >= MIN_STEP).all())
    assert bool((steps == MIN_STEP).any())  # some were pushed to the bound


@pytest.mark.slow  # trains a config, then runs the export tool
def test_export_tool_builds_from_the_config_training_saved(tmp_path):
    """A run trained with --embedded-data (4 classes, not Cityscapes' 19)
    exports with the config path the user trained from: the tool builds the
    model from the copy training saved next to the checkpoint and checks
    the graph on that run's test pipeline (64x64 generated scenes). --out
    and --onnx may name a folder that does not exist yet; a float
    checkpoint is refused in words; --help ends its sentences."""
    from arsam_mm.runner import main
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    config = osp.join(root, 'configs', 'quantized',
                      'fcn_r50-d8_cityscapes-512x1024_w8a8_sgd.py')
    work = tmp_path / 'work'
    main([config, '--embedded-data', '--work-dir', str(work),
          '--cfg-options', 'train_cfg.max_iters=1', 'train_cfg.val_interval=1',
          'val_dataloader.dataset.indices=4',  # 4 val images are enough
          'test_dataloader.dataset.indices=4',
          'default_hooks.checkpoint.interval=1'])
    out = tmp_path / 'new' / 'folder' / 'int.pth'
    tool = osp.join(root, 'tools', 'export_quantized.py')
    onnx_path = tmp_path / 'onnx' / 'sub' / 'm.onnx'
    run = subprocess.run(
        [sys.executable, tool, config, str(work / 'iter_1.pth'), '--out',
         str(out), '--onnx', str(onnx_path)], capture_output=True,
        text=True, cwd=root)
    printed = run.stdout
    assert run.returncode == 0, printed + run.stderr[-2000:]
    assert 'the config training saved' in printed, printed
    assert out.exists() and onnx_path.exists()
    assert 'N x 3 x 64 x 64 pixels' in printed, printed
    assert 'Check on 4 test images' in printed and '(mIoU)' in printed
    # A checkpoint without step sizes was not trained quantized.
    float_ckpt = tmp_path / 'float.pth'
    state = torch.load(work / 'iter_1.pth', weights_only=False)
    state['state_dict'] = {k: v for k, v in state['state_dict'].items()
                           if not k.endswith('_step')}
    torch.save(state, float_ckpt)
    refused = subprocess.run([sys.executable, tool, config, str(float_ckpt)],
                             capture_output=True, text=True, cwd=root)
    assert refused.returncode != 0
    assert 'holds no quantizer state' in refused.stderr
    assert 'not trained with FakeQuantHook' in refused.stderr
    usage = subprocess.run([sys.executable, tool, '--help'], check=True,
                           capture_output=True, text=True, cwd=root).stdout
    usage = ' '.join(usage.split())  # argparse wraps to the terminal
    assert 'integer weights and scales, optionally an ONNX' in usage


class _PerturbedAtForward(Hook):
    """Which parameters the training forward sees moved from the values
    they had before the iteration (the MSAM perturbation is in place then).
    """

    def __init__(self):
        self.moved = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        model = runner.model
        self.before = {n: p.detach().clone()
                       for n, p in model.named_parameters()}
        if not hasattr(self, 'handle'):
            self.handle = model.register_forward_pre_hook(self._compare)
        self.seen = False

    def _compare(self, module, args):
        if module.training and not self.seen:
            self.seen = True
            self.moved.append({n for n, p in module.named_parameters()
                               if not torch.equal(p, self.before[n])})


def test_msam_with_fake_quant_and_exclude(tmp_path, shapes_root):
    """MSAM shares the perturbed-parameter selection with SAM: step sizes
    and excluded parameters never move for its pass, the others do, its
    radius is in the param groups (schedulers can drive it), and the
    weights the step starts from are restored bit for bit."""
    runner = make_runner(
        tmp_path, build_segmentor(seed=2), shapes_root,
        dict(type='MSAMOptimWrapper', rho=0.3, exclude=[r'decode_head'],
             optimizer=dict(type='SGD', lr=0.02, momentum=0.9)), 4,
        custom_hooks=[dict(type='FakeQuantHook', w_bits=4, a_bits=4)])
    probe = _PerturbedAtForward()
    runner.register_hook(probe)
    runner.train()
    wrapper = runner.optim_wrapper
    assert all(group['rho'] == 0.3
               for group in wrapper.optimizer.param_groups)
    names = dict(runner.model.named_parameters())
    assert len(probe.moved) == 4
    assert not probe.moved[0]  # no momentum yet: a plain pass at w
    for moved in probe.moved[1:]:
        assert moved  # the pass runs at w - rho v / ||v||
        assert not any(n.endswith('_step') for n in moved), moved
        assert not any(n.startswith('decode_head') for n in moved), moved
        assert any(n.startswith('backbone') and n.endswith('weight')
                   and not getattr(names[n], 'lsq_step', False)
                   for n in moved)


def test_a_pattern_that_matches_no_layer_is_named():
    """skip (and an own output_layers) pattern that matches no layer name
    changes nothing: the hook says so; the default output patterns, made
    for several toolboxes' heads, stay quiet."""
    import logging

    from mmengine.logging import MMLogger
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        FakeQuantHook(skip=['backbone.stem', 'no_such_layer']).quantize(
            build_segmentor())
        FakeQuantHook(output_layers=['not_a_head']).quantize(
            build_segmentor())
        FakeQuantHook().quantize(build_segmentor())
    finally:
        logger.removeHandler(handler)
    warned = [r.getMessage() for r in records
              if 'matches no layer name' in r.getMessage()]
    assert len(warned) == 2, warned
    assert "skip pattern 'no_such_layer'" in warned[0]
    assert "output_layers pattern 'not_a_head'" in warned[1]


def test_bfloat16_autocast_trains_a_quantized_model_on_cpu(tmp_path,
                                                           shapes_root):
    """AmpARSAMOptimWrapper (bfloat16 autocast on a CPU) with FakeQuantHook:
    the step sizes stay float32, learn, stay positive; losses finite."""
    runner = make_runner(
        tmp_path, build_segmentor(seed=2), shapes_root,
        dict(type='AmpARSAMOptimWrapper', rho=0.05, window=3, warmup_iters=2,
             budget=0.5, dtype='bfloat16',
             optimizer=dict(type='SGD', lr=0.02, momentum=0.9)),
        6, custom_hooks=[dict(type='FakeQuantHook', w_bits=4, a_bits=4)])
    snapshot = _StepSnapshot()
    runner.register_hook(snapshot)
    runner.train()
    steps = {n: p for n, p in runner.model.named_parameters()
             if n.endswith('_step')}
    assert all(p.dtype == torch.float32 and bool((p > 0).all())
               for p in steps.values())
    assert sum(not torch.equal(p, snapshot.values[n])
               for n, p in steps.items()) > 0.5 * len(steps)
    loss = runner.message_hub.log_scalars['train/loss'].current()
    assert math.isfinite(float(loss))
    assert runner.optim_wrapper.sam_iters >= 2
