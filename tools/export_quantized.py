"""Export a model trained with FakeQuantHook: integer weights and scales,
optionally an ONNX integer model (QDQ) that takes the test pipeline's
pixels, checked on real images.

    python tools/export_quantized.py CONFIG CKPT [--out FILE]
        [--onnx [FILE]] [--float-onnx [FILE]] [--check-images N]
        [--tolerance POINTS] [--no-check]

The model is built from the copy of CONFIG that training saved in the work
dir next to CKPT when there is one: it holds every change made at training
time (``--cfg-options``, ``--embedded-data``), which CONFIG itself lacks.

Writes ``{layers: {name: {weight_int, weight_step, act_step, ...}},
float_params}`` with ``torch.save``. With ``--onnx`` it writes the graph
of ``model(x, mode='tensor')`` that takes what the config's test pipeline
yields (N x C x H x W pixels, 0-255, the pipeline's channel order; the
data preprocessor's channel reversal and normalisation are in the graph,
its contract in ``*_input.json`` beside it), every quantized weight an
int8 initializer behind DequantizeLinear and every BatchNorm after a conv
folded into it. Then it runs the config's test images through the
config's own pipeline and evaluator three ways (the Runner's test_step,
PyTorch fake-quant outputs, onnxruntime outputs), prints their metric
side by side with the largest output difference, and exits with status 1
when onnxruntime's metric is more than ``--tolerance`` points from
PyTorch's. The default tolerance is 0.5 points; for class scores never
finer than three images (:func:`arsam_mm.quant.deploy_check.
default_tolerance` says why). Sizes printed are those of the files
written.
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
from typing import Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import quiet  # noqa: E402  (tools/quiet.py)

quiet.quiet_third_party()

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import MODELS, init_default_scope  # noqa: E402
from mmengine.runner import Runner, load_checkpoint  # noqa: E402

import arsam_mm  # noqa: E402,F401
from arsam_mm.hooks import FakeQuantHook  # noqa: E402
from arsam_mm.quant.deploy_check import (  # noqa: E402
    check_export,
    default_tolerance,
)
from arsam_mm.quant.export import (  # noqa: E402
    export_integer_weights,
    export_onnx,
    input_contract,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0].replace('\n', ' '),
        epilog='The copy of CONFIG that training saved next to CKPT is used '
        'when there is one.')
    parser.add_argument('config', help='the training config')
    parser.add_argument('checkpoint', help='a checkpoint of that training')
    parser.add_argument('--out', default=None, metavar='FILE',
                        help='integer weights file (default: CKPT with '
                        '_int.pth); its folder is created')
    parser.add_argument('--onnx', nargs='?', const='', default=None,
                        metavar='FILE', help='also write the ONNX integer '
                        'model (default name: CKPT with _qdq.onnx)')
    parser.add_argument('--float-onnx', nargs='?', const='', default=None,
                        metavar='FILE', help='also write its float twin '
                        '(the same graph without quantizers), for size and '
                        'speed comparisons (tools/benchmark_onnx.py)')
    parser.add_argument('--check-images', type=int, default=0, metavar='N',
                        help='test images the ONNX check runs (default 0: '
                        'the whole test split)')
    parser.add_argument('--tolerance', type=float, default=None,
                        metavar='POINTS', help='largest metric difference '
                        'between onnxruntime and PyTorch that passes '
                        '(default: 0.5; for class scores on N < 600 images '
                        'three images\' share, 300/N)')
    parser.add_argument('--no-check', action='store_true',
                        help='write the ONNX model without running the '
                        'test images through it')
    return parser.parse_args(argv)


def training_config(config: str, checkpoint: str) -> str:
    """The copy of ``config`` that mmengine saved in the work dir holding
    ``checkpoint``, if there is one, else ``config``."""
    saved = osp.join(osp.dirname(osp.abspath(checkpoint)),
                     osp.basename(config))
    if osp.isfile(saved) and osp.abspath(saved) != osp.abspath(config):
        print(f'Building the model from {saved}, the config training saved '
              'next to the checkpoint (with its --cfg-options and '
              '--embedded-data changes).')
        return saved
    return config


def build_quantized(cfg, checkpoint):
    """The model as the Runner builds it (the top-level
    ``data_preprocessor`` included), quantized, with ``checkpoint``."""
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') == 'FakeQuantHook']
    if not hooks:
        raise SystemExit('custom_hooks has no FakeQuantHook; nothing to '
                         'export (export the float model with mmdeploy).')
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)
    state = state.get('state_dict', state)
    if not any(key.endswith('weight_step') for key in state):
        raise SystemExit(
            f'{checkpoint} holds no quantizer state (no LSQ step sizes): it '
            'was not trained with FakeQuantHook. Export a checkpoint of a '
            'quantized run (a config with custom_hooks = '
            "[dict(type='FakeQuantHook', ...)]).")
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    kwargs = {k: v for k, v in hooks[0].items()
              if k not in ('type', 'priority')}
    FakeQuantHook(**kwargs).quantize(model)
    try:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                        logger='silent')
    except RuntimeError as error:
        raise SystemExit(
            f'{checkpoint} does not fit the model of this config ({error}). '
            'Pass the config that trained it: the copy mmengine saved in '
            'its work dir.') from None
    return model.eval()


def test_loader(cfg):
    loader = copy.deepcopy(cfg.test_dataloader)
    loader.update(num_workers=0, persistent_workers=False)
    try:
        return Runner.build_dataloader(loader)
    except (FileNotFoundError, RuntimeError) as error:
        raise SystemExit(
            f'The config\'s test data is not there ({error}). Put it where '
            'test_dataloader says, or pass --no-check to write the graph '
            'unchecked.') from None


def _mib(path: str) -> str:
    return f'{os.path.getsize(path) / 2**20:.2f} MiB'


def write_onnx(model, cfg, args, stem):
    loader = test_loader(cfg)
    first = next(iter(loader))['inputs'][0]
    contract = input_contract(model.data_preprocessor, first)
    path = args.onnx or stem + '_qdq.onnx'
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    done = export_onnx(model, contract, path)
    with open(osp.splitext(path)[0] + '_input.json', 'w') as f:
        json.dump(contract.to_dict(), f, indent=1)
    print(f'ONNX integer model -> {path} ({_mib(path)}): '
          f'{done["integer_weights"]} weights stored as int8, '
          f'{done["batchnorms_folded"]} BatchNorms folded into their conv'
          + (f', {done["batchnorms_left"]} left' if done['batchnorms_left']
             else '') + f'; input contract -> '
          f'{osp.splitext(path)[0]}_input.json')
    print('It takes N x {} x {} x {} pixels as the test pipeline yields them '
          '(0-255, the pipeline\'s channel order); the data preprocessor\'s '
          'work is in the graph.'.format(contract.channels, contract.height,
                                         contract.width))
    if args.float_onnx is not None:
        float_path = args.float_onnx or stem + '_float.onnx'
        export_onnx(model, contract, float_path, quantized=False)
        ratio = os.path.getsize(path) / os.path.getsize(float_path)
        print(f'float twin -> {float_path} ({_mib(float_path)}); the '
              f'integer model is {ratio:.2f}x its size')
    if args.no_check:
        print('Not checked (--no-check).')
        return 0
    return report(check_export(model, cfg, path, test_loader(cfg), contract,
                               args.check_images or None), args.tolerance)


def report(result, tolerance: Optional[float] = None) -> int:
    """Print the check; 1 when onnxruntime's metric is off."""
    metrics = result['metrics']
    if tolerance is None:
        tolerance, why = default_tolerance(result)
    else:
        why = f'{tolerance:g}, --tolerance'
    key, runner = metrics['runner']
    print(f'Check on {result["images"]} test images through the config\'s '
          f'pipeline and evaluator ({key}):')
    print(f'  Runner test_step (PyTorch fake-quant): {runner:.2f}')
    print(f'  max |output difference| onnxruntime vs PyTorch: '
          f'{result["max_diff"]:.3g} (output scale '
          f'{result["output_scale"]:.3g})')
    if result.get('differ') is not None:
        print(f'  images whose top class differs: {result["differ"]} of '
              f'{result["images"]}')
    if 'onnxruntime' not in metrics:
        print('  this model family\'s raw outputs cannot be decoded here: '
              'no metric of the graph; judge the output difference.')
        return 0
    torch_value, ort_value = metrics['pytorch'][1], metrics['onnxruntime'][1]
    print(f'  PyTorch fake-quant outputs: {torch_value:.2f}')
    print(f'  onnxruntime outputs:        {ort_value:.2f}')
    gap = abs(torch_value - ort_value)
    if gap > tolerance:
        print(f'FAILED: onnxruntime is {gap:.2f} points from PyTorch '
              f'(tolerance {why}).')
        return 1
    print(f'OK: onnxruntime is {gap:.2f} points from PyTorch (tolerance '
          f'{why}).')
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(training_config(args.config, args.checkpoint))
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = build_quantized(cfg, args.checkpoint)
    stem = args.checkpoint[:-4] if args.checkpoint.endswith(
        '.pth') else args.checkpoint
    exported = export_integer_weights(model)
    out = args.out or stem + '_int.pth'
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(exported, out)
    print(f'{len(exported["layers"])} quantized layers -> {out} '
          f'({_mib(out)}: n-bit integers in int8 tensors)')
    if args.onnx is None:
        return 0
    return write_onnx(model, cfg, args, stem)


if __name__ == '__main__':
    sys.exit(main())
