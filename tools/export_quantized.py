"""Export a model trained with FakeQuantHook: integer weights and scales,
optionally ONNX with QuantizeLinear/DequantizeLinear (QDQ) nodes.

    python tools/export_quantized.py CONFIG CKPT [--out FILE]
        [--onnx [FILE]] [--shape H W]

The model is built from the copy of CONFIG that training saved in the work
dir next to CKPT when there is one: it holds every change made at training
time (``--cfg-options``, ``--embedded-data``), which CONFIG itself lacks.

Writes ``{layers: {name: {weight_int, weight_step, act_step, ...}},
float_params, size}`` with ``torch.save`` and prints the model size at the
trained bit widths next to full precision. With ``--onnx`` it also writes
the QDQ graph of ``model(inputs, mode='tensor')`` for one input of the
config's training size (or ``--shape``) and, when onnxruntime is
installed, prints how far its output is from the PyTorch fake-quant model.
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

import arsam_mm  # noqa: F401
from arsam_mm.hooks import FakeQuantHook
from arsam_mm.quant.export import export_integer_weights, export_onnx_qdq
from arsam_mm.runner.synthetic import input_channels, train_input_size


def parse_args():
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
                        metavar='FILE', help='also write a QDQ ONNX graph '
                        '(default name: CKPT with _qdq.onnx)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='ONNX input size (default: the training crop)')
    return parser.parse_args()


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
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') == 'FakeQuantHook']
    if not hooks:
        raise SystemExit('custom_hooks has no FakeQuantHook; nothing to '
                         'export (export the float model with mmdeploy).')
    kwargs = {k: v for k, v in hooks[0].items()
              if k not in ('type', 'priority')}
    model = MODELS.build(cfg.model)
    FakeQuantHook(**kwargs).quantize(model)
    try:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    except RuntimeError as error:
        raise SystemExit(
            f'{checkpoint} does not fit the model of this config ({error}). '
            'Pass the config that trained it: the copy mmengine saved in '
            'its work dir.') from None
    return model.eval()


def write_onnx(model, cfg, path, shape):
    height, width = shape or train_input_size(cfg)
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (input_channels(cfg), height, width),
                          generator=generator, dtype=torch.uint8)
    inputs = model.data_preprocessor(dict(inputs=[image]), False)['inputs']
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    export_onnx_qdq(model, inputs, path)
    print(f'ONNX with QDQ nodes ({height}x{width} input) -> {path}')
    try:
        import onnxruntime
    except ImportError:
        print('onnxruntime not installed: the ONNX output was not checked')
        return
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    got = session.run(None, {'inputs': inputs.numpy()})[0]
    with torch.no_grad():
        want = model(inputs, mode='tensor')
    want = want[0] if isinstance(want, (list, tuple)) else want
    diff = (torch.from_numpy(got) - want).abs().max().item()
    scale = want.abs().max().item()
    print(f'onnxruntime vs PyTorch fake-quant: max |diff| = {diff:.3g} '
          f'(output scale {scale:.3g})')
    print(judge_onnx_difference(diff, scale))


def judge_onnx_difference(diff: float, scale: float) -> str:
    """What the difference between the runtime and the fake-quant model
    means: float rounding, or values that land on a rounding boundary and
    quantize one step apart (the two compute in a different order)."""
    share = diff / max(scale, 1e-12)
    if share <= 1e-4:
        return 'OK: they agree to float rounding.'
    return (f'They differ by {share:.2%} of the output scale: some values '
            'land on a rounding boundary of a quantizer and round one step '
            'apart in the two runtimes. At the size the model trained at, the '
            'FCN W4A4 --embedded-data check agreed exactly (0).')


def main():
    args = parse_args()
    cfg = Config.fromfile(training_config(args.config, args.checkpoint))
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = build_quantized(cfg, args.checkpoint)
    stem = args.checkpoint[:-4] if args.checkpoint.endswith(
        '.pth') else args.checkpoint
    exported = export_integer_weights(model)
    out = args.out or stem + '_int.pth'
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(exported, out)
    size = exported['size']
    print(f'{len(exported["layers"])} quantized layers -> {out}')
    print(f"size: {size['full_precision_bytes'] / 2**20:.2f} MiB full "
          f"precision, {size['quantized_bytes'] / 2**20:.2f} MiB quantized "
          f"({size['full_precision_bytes'] / size['quantized_bytes']:.1f}x "
          'smaller)')
    if args.onnx is not None:
        write_onnx(model, cfg, args.onnx or stem + '_qdq.onnx', args.shape)


if __name__ == '__main__':
    main()
