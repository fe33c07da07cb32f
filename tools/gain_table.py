"""Share of SAM's gain each method keeps, per seed, from stored runs.

    python tools/gain_table.py docs/benchmark/timing/val_runs.json

The file maps a setting to its runs (``label``, ``seed``, ``metrics``;
the totals ``tools/benchmark.py`` writes). For every label it prints the
metric's mean and seed std and, on the seeds that also have ``sgd`` and
``sam``, ``(m - m_SGD) / (m_SAM - m_SGD)`` per seed and its mean: the
measure of docs/algorithms.md, "Judging a fast-SAM method".
"""
import argparse
import json
import statistics

from benchmark import gain_kept_per_seed  # tools/, beside this script

METRICS = ('accuracy/top1', 'coco/AP', 'mIoU')


def metric_of(run):
    key = next(k for k in METRICS if k in run['metrics'])
    return run['metrics'][key] * (100 if key == 'coco/AP' else 1)


def table(runs):
    by_label = {}
    for run in runs:
        by_label.setdefault(run['label'], {})[run['seed']] = metric_of(run)
    sgd, sam = by_label.get('sgd', {}), by_label.get('sam', {})
    lines = []
    for label, values in sorted(by_label.items()):
        seeds = sorted(values)
        mean = statistics.mean(values.values())
        std = statistics.stdev(values.values()) if len(values) > 1 else 0.0
        line = f'  {label:7s} n={len(seeds)} {mean:6.2f} +- {std:4.2f}'
        kept = ([] if label in ('sgd', 'sam') else
                gain_kept_per_seed(values, sgd, sam))
        if kept:
            line += (' | kept ' + ' '.join(f'{k:.2f}' for k in kept) +
                     f' (mean {statistics.mean(kept):.2f})')
        lines.append(line)
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', help='JSON: {setting: {"runs": [...]}}')
    args = parser.parse_args()
    with open(args.runs) as f:
        settings = json.load(f)
    for name, setting in settings.items():
        print(f'{name} ({setting.get("split", "val")}):')
        print('\n'.join(table(setting['runs'])))


if __name__ == '__main__':
    main()
