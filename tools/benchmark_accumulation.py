"""What gradient accumulation costs a SAM step, in memory and in time.

    python tools/benchmark_accumulation.py [CONFIG] [--micro-batch B]
        [--counts 1 2 4] [--iters 5] [--device cpu] [--memory-only]

With ``accumulative_counts = N`` a SAM-family wrapper keeps the N
preprocessed micro-batches of a two-pass step for its second pass. This
tool measures, on one random batch at the config's training input size
(``--synthetic`` of ``benchmark_step.py``):

* the bytes of one preprocessed micro-batch of size B (inputs and every
  tensor in the data samples), so the kept micro-batches cost N times
  that;
* the time of one optimizer step of ``SAMOptimWrapper`` over N
  micro-batches of B, against one SAM step on a single batch of N*B (the
  same samples and passes), medians over ``--iters`` rounds, interleaved.

``--memory-only`` skips the timing (no model is run: it suits configs too
large for the machine).
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
    parser.add_argument('--micro-batch', type=int, default=2)
    parser.add_argument('--counts', type=int, nargs='+', default=[1, 2, 4])
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--device', default=None)
    parser.add_argument('--memory-only', action='store_true')
    return parser.parse_args()


def tensor_bytes(node) -> int:
    """Bytes of every tensor in a preprocessed batch (nested structures,
    mmengine data elements)."""
    if isinstance(node, torch.Tensor):
        return node.numel() * node.element_size()
    if isinstance(node, dict):
        return sum(tensor_bytes(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return sum(tensor_bytes(v) for v in node)
    if hasattr(node, 'all_items'):  # BaseDataElement and its fields
        return sum(tensor_bytes(v) for _, v in node.all_items())
    return 0


def main():
    args = parse_args()
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, init_default_scope

    from arsam_mm.runner.synthetic import synthetic_batch

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    torch.manual_seed(0)
    base = revert_sync_batchnorm(MODELS.build(cfg.model)).to(device)
    base.train()
    micro = synthetic_batch(cfg, args.micro_batch)
    with torch.no_grad():
        kept = tensor_bytes(base.data_preprocessor(copy.copy(micro), True))
    card = (torch.cuda.get_device_name(device) if device.type == 'cuda'
            else 'cpu')
    print(f'device: {card}, config: {args.config}, micro-batch: '
          f'{args.micro_batch}')
    print(f'one preprocessed micro-batch: {kept / 2**20:.2f} MiB; '
          'a two-pass step keeps N of them')
    if args.memory_only:
        for n in args.counts:
            print(f'N={n}: {n * kept / 2**20:.2f} MiB kept')
        return

    def sam_step(n, batches):
        """One SAMOptimWrapper step over ``batches`` (N = len(batches))."""
        model = copy.deepcopy(base)
        wrapper = build_optim_wrapper(model, dict(
            type='SAMOptimWrapper', accumulative_counts=n,
            optimizer=cfg.optim_wrapper.optimizer))
        wrapper.initialize_count_status(model, 0, -1)

        def step():
            for batch in batches:
                model.train_step(copy.copy(batch), wrapper)
        return step

    # Per N: N micro-batches of B, and one batch of N*B (the reference).
    steps = {}
    for n in args.counts:
        steps[n, 'acc'] = sam_step(
            n, [synthetic_batch(cfg, args.micro_batch) for _ in range(n)])
        if n > 1:
            steps[n, 'one'] = sam_step(
                1, [synthetic_batch(cfg, args.micro_batch * n)])
    times = {key: [] for key in steps}
    for round_ in range(args.iters + 1):  # round 0 warms up
        for key, step in steps.items():
            if device.type == 'cuda':
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if device.type == 'cuda':
                torch.cuda.synchronize()
            if round_:
                times[key].append(time.perf_counter() - start)
    med = {key: statistics.median(t) for key, t in times.items()}
    print(f"{'N':>3}{'samples':>9}{'kept MiB':>10}{'s/step':>9}"
          f"{'/ one batch of N*B':>20}")
    for n in args.counts:
        acc = med[n, 'acc']
        one = med.get((n, 'one'), acc)  # N = 1 is its own reference
        print(f'{n:>3}{n * args.micro_batch:>9}{n * kept / 2**20:>10.2f}'
              f'{acc:>9.4f}{acc / one:>20.3f}')


if __name__ == '__main__':
    main()
