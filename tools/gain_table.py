"""Share of SAM's gain each method keeps, per seed, from stored runs.

    python tools/gain_table.py docs/benchmark/timing/val_runs.json
    python tools/gain_table.py RUNS.json --markdown [--labels sgd sam ...]

The file maps a setting to its runs (``label``, ``seed``, ``metrics``;
the totals ``tools/benchmark.py`` writes). For every label it prints the
metric's mean and seed std and, on the seeds that also have ``sgd`` and
``sam``, ``(m - m_SGD) / (m_SAM - m_SGD)`` per seed and its mean: the
measure of docs/algorithms.md, "Judging a fast-SAM method".

``--markdown`` prints one table instead: a row per label, a column per
setting. A cell holds the share of SAM's gain kept (mean +- seed std);
in a setting marked ``"clean": true`` (no label noise, SAM need not
help), and for ``sam`` everywhere, the difference to ``sgd`` in points
instead (mean +- std over seeds); ``sgd``'s cell is its mean metric.
After it: the wall time as a multiple of ``sgd``'s on the same seeds,
from runs with ``train_time`` and the same ``session`` (runs measured
side by side; a run without one is in the file's own session).
"""
import argparse
import json
import statistics

from benchmark import gain_kept_per_seed, mean_std  # tools/, beside this script

METRICS = ('accuracy/top1', 'coco/AP', 'mIoU')


def metric_of(run):
    key = next(k for k in METRICS if k in run['metrics'])
    return run['metrics'][key] * (100 if key == 'coco/AP' else 1)


def _by_label(runs, value):
    """``{label: {seed: value(run)}}``."""
    by_label = {}
    for run in runs:
        by_label.setdefault(run['label'], {})[run['seed']] = value(run)
    return by_label


def _spread(values):
    return '{:.2f} +- {:.2f}'.format(*mean_std(values))


def table(runs):
    by_label = _by_label(runs, metric_of)
    sgd, sam = by_label.get('sgd', {}), by_label.get('sam', {})
    lines = []
    for label, values in sorted(by_label.items()):
        mean, std = mean_std(list(values.values()))
        line = f'  {label:7s} n={len(values)} {mean:6.2f} +- {std:4.2f}'
        kept = ([] if label in ('sgd', 'sam') else
                gain_kept_per_seed(values, sgd, sam))
        if kept:
            line += (' | kept ' + ' '.join(f'{k:.2f}' for k in kept) +
                     f' (mean {statistics.mean(kept):.2f})')
        lines.append(line)
    return lines


def cell(setting, label):
    """The --markdown cell of ``label`` in one setting ('' if not run)."""
    metric = _by_label(setting['runs'], metric_of)
    mine, sgd = metric.get(label, {}), metric.get('sgd', {})
    if not mine:
        return ''
    if label == 'sgd':
        text = f'{statistics.mean(mine.values()):.2f} ({len(mine)})'
    elif setting.get('clean') or label == 'sam':
        diffs = [mine[s] - sgd[s] for s in sorted(mine) if s in sgd]
        text = f'{_spread(diffs)} pt ({len(diffs)})' if diffs else ''
    else:
        kept = gain_kept_per_seed(mine, sgd, metric.get('sam', {}))
        text = f'{_spread(kept)} ({len(kept)})' if kept else ''
    # Wall times compare only within one session (runs side by side).
    times = _by_label([r for r in setting['runs'] if r.get('train_time')],
                      lambda run: (run['train_time'], run.get('session')))
    own, base = times.get(label, {}), times.get('sgd', {})
    ratios = [own[s][0] / base[s][0] for s in sorted(own)
              if s in base and own[s][1] == base[s][1]]
    if text and ratios:
        text += f', {statistics.mean(ratios):.2f}x'
    return text


def markdown(settings, labels=None):
    """One table: a row per label, a column per setting."""
    if labels is None:
        labels = sorted({run['label'] for setting in settings.values()
                         for run in setting['runs']})
    lines = ['| method | ' + ' | '.join(settings) + ' |',
             '| --- |' + ' ---: |' * len(settings)]
    for label in labels:
        lines.append(f'| {label} | ' + ' | '.join(
            cell(setting, label) for setting in settings.values()) + ' |')
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', help='JSON: {setting: {"runs": [...]}}')
    parser.add_argument('--markdown', action='store_true',
                        help='one table, a row per label')
    parser.add_argument('--labels', nargs='+', help='rows, in this order')
    args = parser.parse_args()
    with open(args.runs) as f:
        settings = json.load(f)
    if args.markdown:
        print('\n'.join(markdown(settings, args.labels)))
        return
    for name, setting in settings.items():
        print(f'{name} ({setting.get("split", "val")}):')
        print('\n'.join(table(setting['runs'])))


if __name__ == '__main__':
    main()
