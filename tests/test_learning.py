"""Short real training runs on the embedded data: ARSAM learns in each
task (segmentation, pose, classification), judged by the upstream metric
before and after training."""
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from arsam_mm.runner.embedded import use_embedded_data

# Learning runs of 80 to 300 iterations.
pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _train(tmp_path, config, metric, options, batch_size, runner_out=None):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    use_embedded_data(cfg, root=str(tmp_path / 'embedded'),
                      batch_size=batch_size)
    cfg.merge_from_dict(options)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.log_level = 'WARNING'
    cfg.randomness = dict(seed=0)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=10**6,
        save_last=runner_out is not None)
    runner = Runner.from_cfg(cfg)
    if runner_out is not None:
        runner_out.append(runner)
    before = runner.val()[metric]
    runner.train()
    after = runner.val()[metric]
    wrapper = runner.optim_wrapper
    rate = wrapper.sam_iters / wrapper.total_iters
    print(f'{config}: {metric} {before:.4f} -> {after:.4f}, '
          f'sam_rate {rate:.3f}')
    assert 0 < rate < 1  # ARSAM really skipped second passes
    return before, after


def _iter_loop(iters):
    return {'train_cfg': dict(_delete_=True, type='IterBasedTrainLoop',
                              max_iters=iters, val_interval=10**6),
            # mmengine's advice for iter-based loops: without it the loop
            # pauses 2 s at each pass over the embedded set.
            'train_dataloader.sampler': dict(
                _delete_=True, type='InfiniteSampler', shuffle=True),
            'optim_wrapper.window': 10, 'optim_wrapper.warmup_iters': 10}


def test_segmentation_learns(tmp_path):
    options = dict(_iter_loop(240), **{
        'param_scheduler': [dict(type='PolyLR', eta_min=1e-4, power=0.9,
                                 begin=0, end=240, by_epoch=False)]})
    before, after = _train(tmp_path, 'demo/fcn_r18_shapes_arsam.py',
                           'mIoU', options, batch_size=8)
    # All-background scores 22.1 here; the shapes must be found.
    assert after > 22.1 + 5.0 and after > before + 15.0


def test_pose_learns(tmp_path):
    # SimCC (mmpose's coordinate-classification head) on ResNet-18; the
    # heatmap heads need a few hundred iterations to leave their plateau.
    # 80 iterations: AP 0.36 here.
    options = dict(_iter_loop(80), **{
        'model.backbone.depth': 18,
        'model.head.in_channels': 512,
        'optim_wrapper.optimizer.lr': 2e-3,
        'param_scheduler': [dict(type='ConstantLR', factor=1.0, begin=0,
                                 end=80, by_epoch=False)],
    })
    before, after = _train(tmp_path, 'pose/simcc_res50_coco-256x192_arsam.py',
                           'coco/AP', options, batch_size=16)
    assert before < 0.05 and after > before + 0.25


def _classification_learns(tmp_path, config, runner_out=None):
    options = dict(_iter_loop(300), **{
        # A quarter-width ResNet-18 so that 300 steps fit the test budget;
        # the recipe's SGD needs epochs, Adam shows learning in minutes.
        'model.backbone.base_channels': 16,
        'model.head.in_channels': 128,
        'optim_wrapper.optimizer': dict(_delete_=True, type='Adam', lr=1e-3),
        'param_scheduler': [dict(type='ConstantLR', factor=1.0, begin=0,
                                 end=300, by_epoch=False)],
    })
    before, after = _train(tmp_path, config, 'accuracy/top1', options,
                           batch_size=32, runner_out=runner_out)
    # Three balanced classes, 150 val images: chance is 33% +- 4%.
    assert after > 55.0 and after > before + 20.0


def test_classification_learns(tmp_path):
    _classification_learns(tmp_path, 'classification/resnet18_cifar10_arsam.py')


def test_quantized_classification_learns_and_deploys(tmp_path, capsys,
                                                     monkeypatch):
    """W4A4 LSQ (FakeQuantHook) with ARSAM: val() scores the fake-quantized
    model before and after: 76% after 300 iterations here (the float
    model 98%). Then tools/export_quantized.py --onnx on its checkpoint:
    the integer graph, fed the test pipeline's images, scores what the
    Runner's test() scores; a graph that misses the preprocessor's
    normalisation fails the check."""
    import onnx
    runners = []
    config = 'quantized/resnet18_cifar10_w4a4_arsam.py'
    _classification_learns(tmp_path, config, runners)
    runner = runners[0]
    top1 = runner.test()['accuracy/top1']
    tool = _export_tool()
    checkpoint = str(tmp_path / 'work' / 'iter_300.pth')
    capsys.readouterr()
    # 150 val images: one image is 0.67 points; the graph's folded
    # BatchNorm may turn a near-tie prediction, and the default tolerance
    # allows three images (2 points); the broken graph below lost 40.
    assert tool.main([osp.join(ROOT, 'configs', config), checkpoint,
                      '--onnx']) == 0
    printed = capsys.readouterr().out
    values = dict(re.findall(r'^  (Runner test_step|PyTorch fake-quant '
                             r'outputs|onnxruntime outputs).*?([\d.]+)$',
                             printed, re.M))
    assert float(values['Runner test_step']) == pytest.approx(top1, abs=0.01)
    assert abs(float(values['onnxruntime outputs']) - top1) <= 2.0, printed
    graph = onnx.load(checkpoint[:-4] + '_qdq.onnx').graph
    dtypes = {i.name: i.data_type for i in graph.initializer}
    weights = [n.input[0] for n in graph.node
               if n.op_type == 'DequantizeLinear' and n.input[0] in dtypes]
    quantized = [m for m in runner.model.modules()
                 if hasattr(m, 'weight_step')]
    assert len(weights) == len(quantized)
    assert {dtypes[w] for w in weights} == {onnx.TensorProto.INT8}
    ops = {n.op_type for n in graph.node}
    assert 'BatchNormalization' not in ops and 'QuantizeLinear' in ops
    # The same check must fail on a graph fed what it does not expect.
    from arsam_mm.quant.export import InputContract
    monkeypatch.setattr(tool, 'input_contract', lambda pre, pixels:
                        InputContract(*pixels.shape, False, None, None))
    assert tool.main([osp.join(ROOT, 'configs', config), checkpoint,
                      '--onnx', '--tolerance', '1.0']) == 1
    assert 'FAILED: onnxruntime is' in capsys.readouterr().out


def _export_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'export_quantized', osp.join(ROOT, 'tools', 'export_quantized.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
