"""Share of SAM's gain kept against cost, across settings.

    python tools/gain_frontier.py NAME=OUT_DIR ... [--line LABEL=m1,m2,...]
        [--png frontier.png] [--markdown]

Each ``OUT_DIR`` is the ``--out`` of one ``tools/benchmark.py`` run with
``sgd`` and ``sam`` among its methods (one setting: a data set, noise rate,
length, rho); ``NAME`` labels it. For every method of every setting it
prints the share of SAM's gain kept, ``(acc - acc_SGD) / (acc_SAM -
acc_SGD)`` per seed (mean +- std, on the split the run reported: test with
``--test``), next to its forward/backward passes relative to SAM's, and
each method's worst setting. ``--line`` joins methods into one curve on
the plot (e.g. one wrapper at several budgets). Writes one column per
setting: gain kept against passes (examples counted: a second pass on
half the batch is half a pass) and, below, against training wall time,
both relative to SAM's.
"""
import argparse
import json
import os.path as osp


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='+', metavar='NAME=OUT_DIR')
    parser.add_argument('--line', action='append', default=[],
                        metavar='LABEL=m1,m2,...')
    parser.add_argument('--png', default='frontier.png')
    parser.add_argument('--markdown', action='store_true',
                        help='print the table as markdown')
    return parser.parse_args()


def load(out_dir):
    """``(split, metric, {method: row})`` of one benchmark run."""
    with open(osp.join(out_dir, 'results.json')) as f:
        results = json.load(f)
    rows = results['summary']
    def passes(row):  # release 0.4's files have no example-weighted count
        return row.get('passes', row['forwards'] + row['backwards'])

    for row in rows.values():
        row['passes_vs_sam'] = passes(row) / passes(rows['sam'])
    return results['split'], results['metric'], rows


def table(settings, markdown):
    methods = list(dict.fromkeys(m for _, rows in settings.values()
                                 for m in rows))
    names = list(settings)
    header = ['method'] + [f'{n}: gain kept (passes)' for n in names] + [
        'worst']
    lines = []
    for method in methods:
        cells, kept = [method], []
        for name in names:
            row = settings[name][1].get(method)
            if row is None:
                cells.append('')
                continue
            if 'gain_kept_mean' not in row:  # SAM did not beat SGD there
                cells.append(f"n/a ({row['passes_vs_sam']:.2f}x)")
                continue
            kept.append(row['gain_kept_mean'])
            cells.append(f"{row['gain_kept_mean']:.2f} +- "
                         f"{row['gain_kept_std']:.2f} "
                         f"({row['passes_vs_sam']:.2f}x)")
        cells.append(f'{min(kept):.2f}' if kept and method not in (
            'sgd', 'sam') else '')
        lines.append(cells)
    if markdown:
        out = ['| ' + ' | '.join(header) + ' |',
               '|' + ' --- |' * len(header)]
        out += ['| ' + ' | '.join(c) + ' |' for c in lines]
    else:
        widths = [max(len(r[i]) for r in [header] + lines)
                  for i in range(len(header))]
        out = ['  '.join(c.ljust(w) for c, w in zip(r, widths))
               for r in [header] + lines]
    return '\n'.join(out)


def plot(settings, curves, png):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(settings), squeeze=False,
                             figsize=(4.2 * len(settings), 7.6))
    # One colour per curve or method in every panel (sgd is not orange in
    # one column and green in the next).
    labels = list(curves) + list(dict.fromkeys(
        m for _, _, rows in settings.values() for m in rows
        if not any(m in members for members in curves.values())))
    colours = {label: f'C{i % 10}' for i, label in enumerate(labels)}
    for column, (name, (split, _, rows)) in enumerate(settings.items()):
        for ax, x, xlabel in ((axes[0][column], 'passes_vs_sam',
                               "passes / SAM's"),
                              (axes[1][column], 'time_vs_sam',
                               "wall time / SAM's")):
            _panel(ax, rows, curves, x, colours)
            ax.set_title(f'{name} ({split})')
            ax.set_xlabel(xlabel)
            ax.set_ylabel("share of SAM's gain kept")
    fig.tight_layout()
    fig.savefig(png, dpi=100)


def _panel(ax, rows, curves, x, colours):
    joined = set()
    for label, members in curves.items():
        pts = sorted((rows[m][x], rows[m]['gain_kept_mean'],
                      rows[m]['gain_kept_std'])
                     for m in members if 'gain_kept_mean' in rows.get(m, {}))
        if pts:
            xs, ys, es = zip(*pts)
            ax.errorbar(xs, ys, yerr=es, marker='o', capsize=3, label=label,
                        color=colours[label])
            joined.update(members)
    for method, row in rows.items():
        if method in joined or 'gain_kept_mean' not in row:
            continue
        ax.errorbar(row[x], row['gain_kept_mean'], yerr=row['gain_kept_std'],
                    fmt='s', capsize=3, label=method, color=colours[method])
    ax.axhline(0.9, color='grey', ls=':', lw=1)
    ax.legend(fontsize=7)


def main():
    args = parse_args()
    settings = {}
    for spec in args.runs:
        name, out_dir = spec.split('=', 1)
        settings[name] = load(out_dir)
    curves = {}
    for spec in args.line:
        label, members = spec.split('=', 1)
        curves[label] = members.split(',')
    print(table({n: (s[0], s[2]) for n, s in settings.items()},
                args.markdown))
    plot(settings, curves, args.png)
    print(f'plot: {args.png}')


if __name__ == '__main__':
    main()
