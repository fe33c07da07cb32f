"""Accuracy against passes across several benchmark runs (budget sweeps).

    python tools/pareto.py OUT_DIR[:LINE] ... [--png pareto.png]
        [--metric accuracy/top1] [--split val|test]

Each ``OUT_DIR`` is the ``--out`` of one ``tools/benchmark.py`` run (for
example one per ``max_p`` of ARSAM, ``p`` of RST or ``k`` of periodic
SAM). Every (method, run) becomes one point: passes per iteration
(forward + backward, 2 for SGD, 4 for SAM) against the metric's mean and
std over its seeds. Points of a method are joined in order of cost, so
each line is that method's Pareto picture across its budget knob;
``OUT_DIR:LINE`` puts that run's points on a line of their own (e.g.
``work_dirs/arsam_paper:arsam-paper``). Prints the table and writes the
plot.
"""
import argparse
import json
import os.path as osp
import statistics


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('dirs', nargs='+')
    parser.add_argument('--png', default='pareto.png')
    parser.add_argument('--metric', default='accuracy/top1')
    parser.add_argument('--split', choices=('val', 'test'), default='val')
    return parser.parse_args()


def points(dirs, metric, split):
    """``{method: [(passes, mean, std, seeds, label), ...]}``."""
    key = 'test_metrics' if split == 'test' else 'metrics'
    found = {}
    for out in dirs:
        line = None
        if ':' in out:
            out, line = out.rsplit(':', 1)
        with open(osp.join(out, 'results.json')) as f:
            runs = json.load(f)['runs']
        for method in dict.fromkeys(r['method'] for r in runs):
            mine = [r for r in runs if r['method'] == method]
            values = [r[key][metric] for r in mine if r.get(key)]
            if not values:
                continue
            passes = statistics.fmean(
                (r['forwards'] + r['backwards']) / r['iters'] for r in mine)
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            found.setdefault(line or method.replace('_eq', ''), []).append(
                (passes, statistics.fmean(values), std, len(values),
                 osp.basename(osp.normpath(out))))
    return {m: sorted(p) for m, p in found.items()}


def main():
    args = parse_args()
    found = points(args.dirs, args.metric, args.split)
    print(f"{'method':<14}{'run':<24}{'passes/iter':>12}  {args.split} "
          f'{args.metric} (mean +- std, seeds)')
    for method, rows in found.items():
        for passes, mean, std, seeds, label in rows:
            print(f'{method:<14}{label:<24}{passes:>12.2f}  {mean:.2f} +- '
                  f'{std:.2f} ({seeds})')
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for method, rows in found.items():
        xs, ys, es = zip(*[(p, m, s) for p, m, s, _, _ in rows])
        ax.errorbar(xs, ys, yerr=es, fmt='o-', capsize=3, label=method)
    ax.set_xlabel('forward + backward passes per iteration (SGD 2, SAM 4)')
    ax.set_ylabel(f'{args.split} {args.metric}')
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.png, dpi=100)
    print(f'wrote {args.png}')


if __name__ == '__main__':
    main()
