"""Export a model trained with FakeQuantHook as integer weights + scales.

    python tools/export_quantized.py CONFIG CKPT [--out FILE]

Writes ``{layers: {name: {weight_int, weight_step, act_step, ...}},
float_params, size}`` with ``torch.save`` and prints the model size at the
trained bit widths next to full precision. ONNX with QDQ nodes is not
written (see README).
"""
import argparse

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

import arsam_mm  # noqa: F401
from arsam_mm.hooks import FakeQuantHook
from arsam_mm.quant.export import export_integer_weights


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', default=None)
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') == 'FakeQuantHook']
    if not hooks:
        raise SystemExit(f'{args.config}: custom_hooks has no FakeQuantHook; '
                         'nothing to export.')
    kwargs = {k: v for k, v in hooks[0].items() if k not in ('type',
                                                             'priority')}
    model = MODELS.build(cfg.model)
    FakeQuantHook(**kwargs).quantize(model)
    load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    exported = export_integer_weights(model)
    out = args.out or args.checkpoint.replace('.pth', '') + '_int.pth'
    torch.save(exported, out)
    size = exported['size']
    print(f'{len(exported["layers"])} quantized layers -> {out}')
    print(f"size: {size['full_precision_bytes'] / 2**20:.2f} MiB full "
          f"precision, {size['quantized_bytes'] / 2**20:.2f} MiB quantized "
          f"({size['full_precision_bytes'] / size['quantized_bytes']:.1f}x "
          'smaller)')


if __name__ == '__main__':
    main()
