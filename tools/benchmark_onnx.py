"""onnxruntime CPU latency and file size of the ONNX integer model (QDQ)
against its float twin, side by side in one run.

    python tools/benchmark_onnx.py CONFIG [--checkpoint CKPT] [--bits W A]
        [--shape H W] [--batches 1 32] [--repeats 20] [--threads 1]
        [--out DIR]

Both graphs come from ``tools/export_quantized.py``'s export (pixels in,
the preprocessor's work in the graph; the integer model with int8 weights
and BatchNorm folded). Without a checkpoint the model keeps its initial
weights, its step sizes set from one batch of random pixels: enough for
sizes and speed, not for accuracy. Without a FakeQuantHook in the config,
``--bits`` adds one. Timings alternate the two graphs, median of
``--repeats`` runs after warm-up, on ``--threads`` intra-op threads. The
last column says which integer kernels onnxruntime runs after its own
graph optimisation (QLinearConv, ConvInteger, ...): QDQ nodes that it did
not fuse run as float kernels on dequantized values.
"""
import argparse
import copy
import os
import os.path as osp
import statistics
import sys
import time
from collections import Counter

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import quiet  # noqa: E402  (tools/quiet.py)

quiet.quiet_third_party()

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import MODELS, init_default_scope  # noqa: E402

import arsam_mm  # noqa: E402,F401
from arsam_mm.hooks import FakeQuantHook  # noqa: E402
from arsam_mm.quant.export import export_onnx, input_contract  # noqa: E402
from arsam_mm.runner.synthetic import (  # noqa: E402
    input_channels,
    train_input_size,
)

INTEGER_KERNELS = ('QLinearConv', 'ConvInteger', 'QLinearMatMul',
                   'MatMulInteger', 'QGemm', 'QLinearAdd', 'QLinearConcat',
                   'QLinearGlobalAveragePool', 'QLinearSigmoid')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint', help='a checkpoint of a quantized '
                        'run (default: initial weights)')
    parser.add_argument('--bits', type=int, nargs=2, default=(8, 8),
                        metavar=('W', 'A'), help='FakeQuantHook bits when '
                        'the config has none (default 8 8)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default: the training input)')
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 32])
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', default='work_dirs/benchmark_onnx')
    return parser.parse_args(argv)


def quantized_model(cfg, args):
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') == 'FakeQuantHook']
    kwargs = ({k: v for k, v in hooks[0].items()
               if k not in ('type', 'priority')} if hooks else
              dict(w_bits=args.bits[0], a_bits=args.bits[1]))
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    FakeQuantHook(**kwargs).quantize(model)
    height, width = args.shape or train_input_size(cfg)
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (input_channels(cfg), height, width),
                           generator=generator, dtype=torch.uint8)
    if args.checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, args.checkpoint, map_location='cpu',
                        strict=True, logger='silent')
    else:  # step sizes from one batch (the first forward sets them)
        batch = torch.stack([pixels] * 4)
        model.train()
        with torch.no_grad():
            model(model.data_preprocessor(dict(inputs=list(batch)),
                                          False)['inputs'], mode='tensor')
    return model.eval(), pixels, (height, width), kwargs


def session(path, threads):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # not its notes on saving the model
    options.optimized_model_filepath = path[:-5] + '_ort_optimized.onnx'
    return onnxruntime.InferenceSession(path, options,
                                        providers=['CPUExecutionProvider'])


def kernels(path) -> Counter:
    import onnx
    return Counter(n.op_type for n in onnx.load(path[:-5] +
                                                '_ort_optimized.onnx')
                   .graph.node)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model, pixels, (height, width), bits = quantized_model(cfg, args)
    contract = input_contract(model.data_preprocessor, pixels)
    os.makedirs(args.out, exist_ok=True)
    paths = dict(float=osp.join(args.out, 'float.onnx'),
                 integer=osp.join(args.out, 'integer_qdq.onnx'))
    export_onnx(model, contract, paths['float'], quantized=False)
    export_onnx(model, contract, paths['integer'])
    sessions = {name: session(path, args.threads)
                for name, path in paths.items()}
    times = {(name, batch): [] for name in paths for batch in args.batches}
    for batch in args.batches:
        feed = dict(pixels=torch.stack([pixels] * batch).float().numpy())
        for name in paths:  # warm-up
            for _ in range(3):
                sessions[name].run(None, feed)
        for _ in range(args.repeats):
            for name in paths:  # alternating: the same machine state
                start = time.perf_counter()
                sessions[name].run(None, feed)
                times[(name, batch)].append(time.perf_counter() - start)
    print(f'{type(model.backbone).__name__} '
          f'W{bits.get("w_bits")}A{bits.get("a_bits")}, {height}x{width} '
          f'input, onnxruntime CPU, {args.threads} thread(s), median of '
          f'{args.repeats} runs')
    header = f"{'graph':<9}{'file MiB':>10}{'x float':>9}"
    for batch in args.batches:
        header += f"{f'batch {batch} ms':>14}{'x float':>9}"
    print(header + '  integer kernels after onnxruntime\'s optimisation')
    float_size = os.path.getsize(paths['float'])
    for name, path in paths.items():
        size = os.path.getsize(path)
        row = f'{name:<9}{size / 2**20:>10.2f}{size / float_size:>9.2f}'
        for batch in args.batches:
            ms = statistics.median(times[(name, batch)]) * 1000
            base = statistics.median(times[('float', batch)]) * 1000
            row += f'{ms:>14.2f}{ms / base:>9.2f}'
        found = {k: v for k, v in kernels(path).items()
                 if k in INTEGER_KERNELS}
        row += '  ' + (', '.join(f'{k} x{v}' for k, v in sorted(
            found.items())) or 'none (float kernels)')
        print(row)


if __name__ == '__main__':
    main()
