"""Time one training iteration, side by side, on the same model and batch.

    python tools/benchmark_step.py [CONFIG] [--iters 20] [--device cpu]
        [--synthetic [--shape H W] | --embedded-data] [--batch-size N] [--amp]
        [--quant W A]

Rows: plain SGD (mmengine ``OptimWrapper``); a hand-written foreach SAM
loop (what a user would write without us); ``SAMOptimWrapper``; an ARSAM
one-pass (reuse) iteration that mixes the stored PSF; an ARSAM SAM
iteration; a LookSAM reuse iteration; then what a run pays per iteration
on average, ARSAM at its default budget (0.2 of the iterations take two
passes) and LookSAM at ``k=5``, from those rows.
The methods run interleaved, round after round, and the table reports
medians and ratios (machines are shared: read the ratios), and on a GPU
each method's peak memory (``torch.cuda.max_memory_allocated`` over one
step of it alone).

``--synthetic`` times the config's real input size without its data set:
one random batch shaped like the training crop (mmseg: ``crop_size``;
mmpretrain: the train pipeline's crop; ``--shape H W`` where the config
names none), random labels. ``--amp`` uses the
mixed-precision twins (the hand-written row is left out). ``--quant W A``
fake-quantizes the model first (``FakeQuantHook``'s layer choice).
"""
import argparse
import copy
import statistics
import time

import torch

import arsam_mm  # noqa: F401


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?',
                        default='configs/demo/fcn_r18_shapes_arsam.py')
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--device', default=None,
                        help='cpu or cuda (default: cuda if available)')
    data = parser.add_mutually_exclusive_group()
    data.add_argument('--synthetic', action='store_true',
                      help='a random batch of the config\'s input size '
                      '(no data set needed; mmseg and mmpretrain configs)')
    data.add_argument('--embedded-data', action='store_true',
                      help='the package\'s generated data (as tools/train.py)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size of --synthetic (default: the '
                        "config's training input size)")
    parser.add_argument('--amp', action='store_true',
                        help='mixed-precision twins of every wrapper')
    parser.add_argument('--amp-dtype', default=None,
                        choices=['float16', 'bfloat16'],
                        help='autocast dtype of --amp (default: mmengine\'s, '
                        'float16 on a GPU; bfloat16 on a CPU)')
    parser.add_argument('--quant', type=int, nargs=2, metavar=('W', 'A'),
                        help='fake-quantize the model to W-bit weights and '
                        'A-bit activations first')
    return parser.parse_args()


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def hand_written_sam_step(model, batch, optimizer, rho=0.05):
    """SAM as a user writes it with foreach ops (no framework glue)."""
    data = model.data_preprocessor(batch, True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    params = [p for g in optimizer.param_groups for p in g['params']
              if p.grad is not None]
    grads = [p.grad for p in params]
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    with torch.no_grad():
        e = torch._foreach_mul(grads, rho / (norm + 1e-12))
        torch._foreach_add_(params, e)
    optimizer.zero_grad(set_to_none=False)
    momenta = []
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            momenta.append((m, m.momentum))
            m.momentum = 0.0
    loss2, _ = model.parse_losses(model(**data, mode='loss'))
    loss2.backward()
    for m, momentum in momenta:
        m.momentum = momentum
    with torch.no_grad():
        torch._foreach_sub_(params, e)
    optimizer.step()
    optimizer.zero_grad()


def main():
    args = parse_args()
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import Runner

    from arsam_mm.hooks import FakeQuantHook
    from arsam_mm.optim import AmpOnAnyDevice
    from arsam_mm.runner.embedded import use_embedded_data
    from arsam_mm.runner.synthetic import set_input_size, synthetic_batch

    cfg = Config.fromfile(args.config)
    if args.embedded_data:
        use_embedded_data(cfg, batch_size=args.batch_size or 4)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    batch_size = args.batch_size or cfg.train_dataloader.batch_size
    if args.synthetic:
        if args.shape:
            set_input_size(cfg, args.shape)
        batch = synthetic_batch(cfg, batch_size, args.shape)
    else:
        loader_cfg = copy.deepcopy(cfg.train_dataloader)
        loader_cfg.batch_size = batch_size
        batch = next(iter(Runner.build_dataloader(loader_cfg)))
    optimizer_cfg = cfg.optim_wrapper.optimizer

    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = bool(
            cfg.get('env_cfg', {}).get('cudnn_benchmark', False))
    torch.manual_seed(0)
    # One process, as the Runner does without a launcher: SyncBN -> BN.
    base = revert_sync_batchnorm(MODELS.build(cfg.model))
    if args.quant:
        FakeQuantHook(w_bits=args.quant[0], a_bits=args.quant[1]).quantize(
            base)
    base = base.to(device)
    base.train()

    wrappers = {
        'sgd': dict(type=AmpOnAnyDevice if args.amp else 'OptimWrapper'),
        'sam': dict(type='SAMOptimWrapper'),
        # The kind of iteration is forced below, so any schedule does:
        # 'paper' needs no run length.
        'arsam_reuse': dict(type='ARSAMOptimWrapper', warmup_iters=1,
                            max_reuse=10**9, schedule='paper'),
        'arsam_sam': dict(type='ARSAMOptimWrapper', warmup_iters=10**9,
                          schedule='paper'),
        # k huge: one SAM iteration first, then reuse iterations only.
        'looksam_reuse': dict(type='LookSAMOptimWrapper', k=10**9),
    }
    if args.amp:
        for kind in ('sam', 'arsam_reuse', 'arsam_sam', 'looksam_reuse'):
            wrappers[kind]['type'] = 'Amp' + wrappers[kind]['type']
        if args.amp_dtype:
            for kind in wrappers:
                wrappers[kind]['dtype'] = args.amp_dtype

    def setup(kind):
        model = copy.deepcopy(base)
        if kind == 'hand':
            wrapper = build_optim_wrapper(
                model, dict(type='OptimWrapper', optimizer=optimizer_cfg))
            opt = wrapper.optimizer
            return lambda: hand_written_sam_step(model, copy.copy(batch), opt)
        wrapper = build_optim_wrapper(
            model, dict(wrappers[kind], optimizer=optimizer_cfg))
        step = lambda: model.train_step(copy.copy(batch), wrapper)  # noqa
        if kind == 'arsam_reuse':
            step()  # one SAM iteration stores the PSF ...
            wrapper.policy.window_target = 0.0  # ... then only reuse ones
        if kind == 'looksam_reuse':
            step()  # the SAM iteration that stores the direction
        return step

    names = {
        'sgd': f"plain SGD ({'Amp' if args.amp else ''}OptimWrapper)",
        'hand': 'hand-written foreach SAM',
        'sam': wrappers['sam']['type'],
        'arsam_reuse': 'ARSAM reuse iteration',
        'arsam_sam': 'ARSAM SAM iteration',
        'looksam_reuse': 'LookSAM reuse iteration',
    }
    if args.amp:
        del names['hand']  # a hand loop with a GradScaler is not the point
    steps, peak_mb = {}, {}
    for kind in names:
        steps[kind] = setup(kind)
        if device.type == 'cuda':  # one step of it alone
            torch.cuda.synchronize(device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            steps[kind]()
            torch.cuda.synchronize(device)
            peak_mb[kind] = torch.cuda.max_memory_allocated(device) / 2**20
    times = {kind: [] for kind in names}
    for round_ in range(args.warmup + args.iters):
        for kind, step in steps.items():
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            if round_ >= args.warmup:
                times[kind].append(time.perf_counter() - start)

    med = {k: statistics.median(v) for k, v in times.items()}
    # What a run pays per iteration: 0.2 of them take two passes.
    med['arsam_run'] = 0.2 * med['arsam_sam'] + 0.8 * med['arsam_reuse']
    med['looksam_run'] = 0.2 * med['sam'] + 0.8 * med['looksam_reuse']
    names.update(arsam_run='ARSAM run (budget 0.2)',
                 looksam_run='LookSAM run (k=5)')
    ref = 'hand' if 'hand' in med else 'sam'
    card = (torch.cuda.get_device_name(device) if device.type == 'cuda'
            else 'cpu')
    amp = (f', amp {args.amp_dtype or "default dtype"}' if args.amp else '')
    print(f'device: {card}, config: {args.config}, batch: {batch_size}, '
          f'input: {"synthetic" if args.synthetic else "data"}{amp}'
          f'{", W%dA%d" % tuple(args.quant) if args.quant else ""}, '
          f'rounds: {args.iters} (median)')
    ref_label = '/ hand SAM' if ref == 'hand' else '/ SAM'
    print(f"{'method':<31}{'ms/iter':>9}{'/ SGD':>8}{ref_label:>12}"
          f"{'peak MB':>9}")
    for kind, label in names.items():
        peak = (f'{peak_mb[kind]:>9.0f}' if kind in peak_mb else
                f"{'-':>9}")
        print(f'{label:<31}{med[kind] * 1000:>9.1f}'
              f'{med[kind] / med["sgd"]:>8.3f}'
              f'{med[kind] / med[ref]:>12.3f}{peak}')


if __name__ == '__main__':
    main()
