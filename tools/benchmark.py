"""SGD, SAM, ARSAM and the peer fast-SAM methods side by side.

    python tools/benchmark.py CONFIG [--methods sgd sam arsam looksam aesam
        rst periodic msam late rst_eq periodic_eq]
        [--seeds 0 1 2] [--iters N | --epochs N] [--embedded-data]
        [--device cpu|cuda] [--data-root DIR] [--out DIR] [--jobs N]
        [--cfg-options k=v ...]

Every (method, seed) trains the same config in its own process (so peak
memory is its own) with only the optimizer wrapper type changed and the
same seed across methods; ``--jobs N`` runs N of them at a time (each
with ``cpu_count // N`` threads unless ``OMP_NUM_THREADS`` is set).
Passes are counted by instrumentation (``SAMTraceHook``), not derived
from the schedule. Prints one table and
writes ``results.json`` (the table and each run's totals; the
per-iteration records stay in ``LABEL_seedN.json``) plus PNG plots to
``--out``:

* ``sam_rate.png``: fraction of two-pass iterations over training;
* ``grad_psf_norms.png``: ||g|| and ||PSF|| over training (ARSAM's log,
  as in the paper's Figure 2);
* ``arsam_schedule.png``: ARSAM's target rate and ||PSF|| / ||g|| over
  training;
* ``metric_vs_time.png``: final metric against training wall time;
* ``metric_vs_passes.png``: final metric against forward/backward passes
  (the cost axis every method is judged on);
* ``metric_and_cost.png``: the metric of each method beside its passes and
  wall time as multiples of the first method's (the demo's figure).

``rst_eq`` and ``periodic_eq`` are the equal-budget controls: RST with
``p`` and periodic SAM with the fractional period ``k = 1 / p``, where
``p`` is ARSAM's measured SAM rate for the same seed in the same run
(``arsam`` must come before them in ``--methods``). With ``sgd`` and
``sam`` in the run, each method also gets the fraction of SAM's gain it
keeps,
``(acc - acc_SGD) / (acc_SAM - acc_SGD)`` per seed, mean +- std.
MSAM keeps the config's ``rho`` unless given its own
(``msam:optim_wrapper.rho=0.3``; its authors use larger values than SAM).

The console shows one progress line per run (method, seed, iteration,
ETA, last validation metric): live bars on a terminal, a plain line per
running run every 10 seconds elsewhere; each run's full log is
``--out/LABEL_seedN/run.log``.

A method may carry a label, ``LABEL=METHOD``, to run several settings of
one wrapper side by side: ``--methods sgd sam arsam a10=arsam
--cfg-options a10:optim_wrapper.budget=0.1`` (options go by label).
"""
import argparse
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time

METHODS = dict(sgd='OptimWrapper', sam='SAMOptimWrapper',
               arsam='ARSAMOptimWrapper', looksam='LookSAMOptimWrapper',
               aesam='AESAMOptimWrapper', rst='RandomSAMOptimWrapper',
               periodic='PeriodicSAMOptimWrapper', msam='MSAMOptimWrapper',
               late='LatePhaseSAMOptimWrapper',
               rst_eq='RandomSAMOptimWrapper',
               periodic_eq='PeriodicSAMOptimWrapper')
DEFAULT_METHODS = ['sgd', 'sam', 'arsam', 'looksam', 'aesam', 'rst']
#: Each run's progress, in its work dir (``SAMTraceHook``).
PROGRESS_FILE = 'progress.json'
#: Seconds between two plain progress lines (not a terminal).
PLAIN_EVERY = 10.0
#: What each method keeps of the config's optim_wrapper; the rest is the
#: config's own wrapper's and is replaced with it.
KEPT_KEYS = ('optimizer', 'paramwise_cfg', 'clip_grad', 'rho')


def base_method(spec):
    """``LABEL=METHOD`` -> METHOD; a plain method is its own label."""
    return spec.split('=', 1)[-1]


def label_of(spec):
    return spec.split('=', 1)[0]


def method_spec(spec):
    if base_method(spec) not in METHODS:
        raise argparse.ArgumentTypeError(
            f'{spec!r}: use one of {sorted(METHODS)}, or LABEL=METHOD')
    return spec


def arsam_rate(out, seed):
    """ARSAM's measured SAM rate for ``seed`` in this run's ``--out``."""
    with open(osp.join(out, f'arsam_seed{seed}.json')) as f:
        run = json.load(f)
    return run['sam_iters'] / max(run['iters'], 1)


def equal_budget(method, rate):
    """The wrapper settings of an equal-budget control at ``rate``."""
    if method == 'rst_eq':
        return dict(p=rate)
    # A fractional period spreads SAM iterations evenly at exactly p.
    return dict(k=max(1.0, 1 / rate) if rate > 0 else 10**9)


def check_shared_options(options):
    """Refuse a shared ``optim_wrapper.KEY`` that the switch of wrapper
    would drop (it would train something else than the command says)."""
    for option in options:
        key = option.split('=', 1)[0]
        parts = key.split('.')
        if ':' not in key and parts[0] == 'optim_wrapper' and (
                len(parts) < 2 or parts[1] not in KEPT_KEYS):
            raise SystemExit(
                f'--cfg-options {option}: each method replaces the config\'s '
                f'optim_wrapper and keeps only {", ".join(KEPT_KEYS)}, so '
                'this option would be dropped. Give it per label: '
                f'LABEL:{option} (e.g. arsam:{option}).')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--methods', nargs='+', default=DEFAULT_METHODS,
                        type=method_spec,
                        help=f'of {sorted(METHODS)}, or LABEL=METHOD')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--iters', type=int, help='iteration-based run')
    parser.add_argument('--epochs', type=int, help='epoch-based run')
    parser.add_argument('--embedded-data', action='store_true')
    parser.add_argument('--device', default=None)
    parser.add_argument('--data-root', help='replaces data_root of every '
                        'data set in the config')
    parser.add_argument('--out', default='work_dirs/benchmark')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='key=value for every method, or '
                        'METHOD:key=value for one (e.g. arsam:optim_wrapper.'
                        'window=10); of optim_wrapper, only optimizer, '
                        'paramwise_cfg, clip_grad and rho are shared')
    parser.add_argument('--metric', help='metric to report (default: mIoU, '
                        'accuracy/top1 or coco/AP, whichever is there)')
    parser.add_argument('--test', action='store_true',
                        help='after training, evaluate the test set once '
                        '(Runner.test) and report it instead of val. Tune '
                        'without it; add it only for the final run')
    parser.add_argument('--skip-done', action='store_true',
                        help='keep the (method, seed) JSONs already in '
                        '--out and run only the missing ones (an interrupted '
                        'run, or methods added to a finished one)')
    parser.add_argument('--summarize-only', action='store_true',
                        help='rebuild table and plots from the JSONs in --out')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs at a time (one process each)')
    parser.add_argument('--progress-every', type=float, default=PLAIN_EVERY,
                        help='seconds between two progress lines when the '
                        'console is not a terminal (a log, CI)')
    parser.add_argument('--run-one', nargs=2, metavar=('METHOD', 'SEED'),
                        help=argparse.SUPPRESS)
    return parser.parse_args()


def run_one(args, spec, seed):
    """Train one (method, seed) in this process; write its JSON."""
    method, label = base_method(spec), label_of(spec)
    import torch
    from mmengine.config import Config, DictAction
    from mmengine.runner import Runner

    import arsam_mm  # noqa: F401
    from arsam_mm.runner import check_config
    from arsam_mm.runner.embedded import use_embedded_data, walk_dicts

    cfg = Config.fromfile(args.config)
    if args.embedded_data:
        use_embedded_data(cfg)
    if args.data_root:
        def set_root(node):
            if 'data_root' in node:
                node['data_root'] = args.data_root
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            if key in cfg:
                walk_dicts(cfg[key], set_root)
    def parse(items):
        return {k: DictAction._parse_iterable(v)
                for k, v in (item.split('=', 1) for item in items)}

    # ``METHOD:key=value`` applies to that method only, after the switch.
    shared = [o for o in args.cfg_options if ':' not in o.split('=')[0]]
    own = [o.split(':', 1)[1] for o in args.cfg_options
           if o.split('=')[0].startswith(f'{label}:')]
    cfg.merge_from_dict(parse(shared))
    if args.iters:
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=args.iters,
                             val_interval=args.iters)
    elif args.epochs:
        cfg.train_cfg = dict(by_epoch=True, max_epochs=args.epochs,
                             val_interval=args.epochs)
    keep = {k: v for k, v in cfg.optim_wrapper.items() if k in KEPT_KEYS}
    cfg.optim_wrapper = dict(type=METHODS[method], **keep)
    if method.endswith('_eq'):
        cfg.optim_wrapper.update(equal_budget(method,
                                              arsam_rate(args.out, seed)))
    if method == 'sgd':
        cfg.optim_wrapper.pop('rho', None)
    else:
        cfg.optim_wrapper.setdefault('rho', 0.05)
    cfg.merge_from_dict(parse(own))
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = osp.join(args.out, f'{label}_seed{seed}')
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='SAMTraceHook', progress_file=PROGRESS_FILE)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        by_epoch=False, interval=10**9,
                                        save_last=False)
    cfg.log_level = 'INFO'  # into the run's run.log, not the console
    if args.device == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    check_config(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    def scalars(prefix):
        return {k[len(prefix):]: float(v.current())
                for k, v in runner.message_hub.log_scalars.items()
                if k.startswith(prefix) and 'time' not in k}

    metrics = scalars('val/')
    test_metrics = None
    if args.test:
        runner.test()
        test_metrics = scalars('test/')
    with open(osp.join(cfg.work_dir, 'sam_trace.json')) as f:
        trace = json.load(f)
    if torch.cuda.is_available() and args.device != 'cpu':
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
        memory_kind = 'max allocated (GPU)'
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        memory_kind = 'peak RSS (CPU)'
    wrapper = runner.optim_wrapper
    result = dict(method=label, seed=seed, metrics=metrics,
                  test_metrics=test_metrics,
                  iters=runner.iter, forwards=trace['forwards'],
                  backwards=trace['backwards'],
                  passes=trace.get('passes',
                                   trace['forwards'] + trace['backwards']),
                  train_time=trace['train_time'], peak_mb=peak_mb,
                  memory_kind=memory_kind,
                  sam_iters=getattr(wrapper, 'sam_iters', 0),
                  records=trace['records'])
    with open(osp.join(args.out, f'{label}_seed{seed}.json'), 'w') as f:
        json.dump(result, f)


def mean_std(values):
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def gain_kept_per_seed(mine, sgd, sam):
    """``(acc - acc_SGD) / (acc_SAM - acc_SGD)`` on each seed (dicts seed ->
    metric) that has all three and where SAM differs from SGD."""
    return [(mine[s] - sgd[s]) / (sam[s] - sgd[s]) for s in sorted(mine)
            if s in sgd and s in sam and sam[s] != sgd[s]]


def _gain_kept(by_method, rows, metric, split_key='metrics'):
    """Per seed ``(acc - acc_SGD) / (acc_SAM - acc_SGD)``, mean +- std."""
    if 'sgd' not in by_method or 'sam' not in by_method:
        return

    def per_seed(method):
        return {r['seed']: r[split_key].get(metric, float('nan'))
                for r in by_method[method]}

    sgd, sam = per_seed('sgd'), per_seed('sam')
    for method in by_method:
        kept = gain_kept_per_seed(per_seed(method), sgd, sam)
        if kept:
            mean, std = mean_std(kept)
            rows[method].update(gain_kept_mean=mean, gain_kept_std=std)


def summarize(args, results):
    # Val unless --test: then the test set, read once after training.
    split, split_key = ('test', 'test_metrics') if args.test else (
        'val', 'metrics')
    names = list(results[0][split_key])
    preferred = [args.metric, 'mIoU', 'accuracy/top1', 'coco/AP']
    metric = next((m for m in preferred if m in names), names[0])
    by_method = {label_of(m): [r for r in results
                               if r['method'] == label_of(m)]
                 for m in args.methods}
    rows = {}
    for method, runs in by_method.items():
        time_mean, _ = mean_std([r['train_time'] for r in runs])
        value_mean, value_std = mean_std(
            [r[split_key].get(metric, float('nan')) for r in runs])
        rows[method] = dict(
            iters=runs[0]['iters'],
            forwards=statistics.fmean(r['forwards'] for r in runs),
            backwards=statistics.fmean(r['backwards'] for r in runs),
            passes=statistics.fmean(
                r.get('passes', r['forwards'] + r['backwards'])
                for r in runs),
            sam_rate=statistics.fmean(r['sam_iters'] / max(r['iters'], 1)
                                      for r in runs),
            train_time=time_mean,
            peak_mb=max(r['peak_mb'] for r in runs),
            metric_mean=value_mean, metric_std=value_std, seeds=len(runs))
    _gain_kept(by_method, rows, metric, split_key)
    ref_sam = rows.get('sam', {}).get('train_time')
    ref_sgd = rows.get('sgd', {}).get('train_time')
    header = (f"{'method':<9}{'iters':>7}{'fwd':>8}{'bwd':>8}{'SAM rate':>10}"
              f"{'time s':>9}{'/SAM':>7}{'/SGD':>7}{'peak MB':>9}"
              f"  {split} {metric} (mean +- std, {len(args.seeds)} seeds)")
    lines = [header]
    for method, row in rows.items():
        rel_sam = row['train_time'] / ref_sam if ref_sam else float('nan')
        rel_sgd = row['train_time'] / ref_sgd if ref_sgd else float('nan')
        row.update(time_vs_sam=rel_sam, time_vs_sgd=rel_sgd)
        lines.append(
            f"{method:<9}{row['iters']:>7}{row['forwards']:>8.0f}"
            f"{row['backwards']:>8.0f}{row['sam_rate']:>10.3f}"
            f"{row['train_time']:>9.1f}{rel_sam:>7.2f}{rel_sgd:>7.2f}"
            f"{row['peak_mb']:>9.0f}  {row['metric_mean']:.3f} +- "
            f"{row['metric_std']:.3f}" + (
                f"   SAM gain kept {row['gain_kept_mean']:.2f} +- "
                f"{row['gain_kept_std']:.2f}" if 'gain_kept_mean' in row
                else ''))
    memory_kind = results[0]['memory_kind']
    table = '\n'.join(lines) + f'\n(memory: {memory_kind})'
    print(table)
    with open(osp.join(args.out, 'results.json'), 'w') as f:
        # Per-iteration records stay in LABEL_seedN.json: with them a
        # 25-run results.json was 9 MB.
        runs = [{k: v for k, v in r.items() if k != 'records'}
                for r in results]
        json.dump(dict(config=args.config, metric=metric, split=split,
                       summary=rows, table=table, runs=runs), f, indent=1)
    plot(args, by_method, rows, metric)


def plot(args, by_method, rows, metric):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, runs in by_method.items():
        recs = runs[0]['records']
        if recs and 'sam_rate' in recs[0]:
            ax.plot([r['iter'] for r in recs], [r['sam_rate'] for r in recs],
                    label=method)
    ax.set_xlabel('iteration')
    ax.set_ylabel('fraction of two-pass iterations so far')
    ax.legend()
    fig.tight_layout()
    fig.savefig(osp.join(args.out, 'sam_rate.png'), dpi=100)

    if 'arsam' in by_method:
        recs = [r for r in by_method['arsam'][0]['records']
                if r.get('psf_ratio')]
        if recs:
            fig, ax = plt.subplots(figsize=(6, 4))
            its = [r['iter'] for r in recs]
            ax.plot(its, [r['psf_norm'] / r['psf_ratio'] for r in recs],
                    label='||g||')
            ax.plot(its, [r['psf_norm'] for r in recs], label='||PSF||')
            ax.set_xlabel('iteration (last SAM iteration\'s values)')
            ax.set_yscale('log')
            ax.legend()
            ax.set_title('ARSAM: gradient and PSF norms')
            fig.tight_layout()
            fig.savefig(osp.join(args.out, 'grad_psf_norms.png'), dpi=100)

    if 'arsam' in by_method:
        # The schedule itself: the target rate (rate / window) and the
        # statistic it follows, ||PSF|| / ||g|| (the paper's Figure 2).
        recs = [r for r in by_method['arsam'][0]['records']
                if 'arsam_rate' in r]
        if recs:
            fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5),
                                              sharex=True)
            top.plot([r['iter'] for r in recs],
                     [r['arsam_rate'] for r in recs])
            top.set_ylabel('ARSAM target rate')
            # New values come from SAM iterations only (two forwards).
            ratio = [r for prev, r in zip(recs, recs[1:])
                     if r.get('psf_ratio')
                     and r['forwards'] - prev['forwards'] == 2]
            bottom.plot([r['iter'] for r in ratio],
                        [r['psf_ratio'] for r in ratio], '.', ms=2)
            bottom.set_ylabel('||PSF|| / ||g||')
            bottom.set_xlabel('iteration')
            fig.tight_layout()
            fig.savefig(osp.join(args.out, 'arsam_schedule.png'), dpi=100)

    # One figure for the reader in a hurry: what each method reached, and
    # what it cost (passes and wall time, as multiples of the first
    # method's: SGD's in the demo).
    names = list(rows)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.bar(names, [rows[m]['metric_mean'] for m in names],
             yerr=[rows[m]['metric_std'] for m in names], capsize=3,
             color='tab:blue')
    low = min(rows[m]['metric_mean'] for m in names)
    high = max(rows[m]['metric_mean'] for m in names)
    left.set_ylim(low - max(2.0, high - low), high + max(1.0, high - low) / 2)
    left.set_ylabel(metric)
    base = rows[names[0]]
    width = 0.4
    for offset, (label, cost) in zip((-width / 2, width / 2), (
            ('passes', lambda r: r['passes']),
            ('wall time', lambda r: r['train_time']))):
        right.bar([k + offset for k in range(len(names))],
                  [cost(rows[m]) / cost(base) for m in names], width,
                  label=label)
    right.set_xticks(range(len(names)), names)
    right.set_ylabel(f'cost (x {names[0]})')
    right.legend()
    fig.tight_layout()
    fig.savefig(osp.join(args.out, 'metric_and_cost.png'), dpi=100)

    cost_axes = [
        ('forward + backward passes', 'metric_vs_passes.png',
         lambda row: row['passes']),
        ('training wall time (s)', 'metric_vs_time.png',
         lambda row: row['train_time']),
    ]
    for xlabel, name, cost in cost_axes:
        fig, ax = plt.subplots(figsize=(6, 4))
        for method, row in rows.items():
            ax.errorbar(cost(row), row['metric_mean'], yerr=row['metric_std'],
                        fmt='o', capsize=3, label=method)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.legend()
        fig.tight_layout()
        fig.savefig(osp.join(args.out, name), dpi=100)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f'{seconds // 60}:{seconds % 60:02d}'


class RunsProgress:
    """One line per run: method, seed, iterations, ETA and the last
    validation metric, read from each run's progress file. On a terminal,
    rich's live bars; elsewhere (a log, CI) a plain line per running run
    every ``every`` seconds."""

    def __init__(self, out: str, every: float = PLAIN_EVERY,
                 stream=sys.stdout):
        self.out, self.every, self.stream = out, every, stream
        self.live = None
        self.tasks = {}
        self.evaluating = set()
        self._printed = time.monotonic()
        if stream.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            self.live = Progress(
                TextColumn('{task.description:<18}'), BarColumn(),
                MofNCompleteColumn(), TimeElapsedColumn(), TextColumn('ETA'),
                TimeRemainingColumn(), TextColumn('{task.fields[metric]}'))
            self.live.start()

    def _read(self, label, seed):
        path = osp.join(self.out, f'{label}_seed{seed}', PROGRESS_FILE)
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    @staticmethod
    def _metric(progress) -> str:
        metrics = (progress or {}).get('metrics') or {}
        for key in ('mIoU', 'accuracy/top1', 'coco/AP'):
            if key in metrics:
                return f'val {key} {metrics[key]:.2f}'
        return ''

    def say(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def start(self, label, seed) -> None:
        self.tasks[(label, seed)] = (None if self.live is None else
                                     self.live.add_task(
                                         f'{label} seed {seed}', total=None,
                                         metric=''))
        if self.live is None:
            self.say(f'[benchmark] {label} seed {seed}: started (log: '
                     f'{osp.join(self.out, f"{label}_seed{seed}", "run.log")})')

    def poll(self) -> None:
        if self.live is not None:
            for (label, seed), task in self.tasks.items():
                progress = self._read(label, seed)
                if progress:
                    self.live.update(task, total=progress['max_iters'],
                                     completed=progress['iter'],
                                     metric=self._metric(progress))
            return
        if time.monotonic() - self._printed < self.every:
            return
        self._printed = time.monotonic()
        for label, seed in self.tasks:
            progress = self._read(label, seed)
            if not progress:
                self.say(f'[benchmark] {label} seed {seed}: setting up')
                continue
            done, total = progress['iter'], progress['max_iters']
            if done >= total:  # the final val/test: said once, not repeated
                if (label, seed) not in self.evaluating:
                    self.evaluating.add((label, seed))
                    self.say(f'[benchmark] {label} seed {seed}: {total} '
                             f'iterations in {_clock(progress["time"])}, '
                             'evaluating')
                continue
            eta = progress['time'] / max(done, 1) * (total - done)
            self.say(f'[benchmark] {label} seed {seed}: {done}/{total} '
                     f'iterations, {_clock(progress["time"])} elapsed, ETA '
                     f'{_clock(eta)} {self._metric(progress)}'.rstrip())

    def finish(self, label, seed) -> None:
        task = self.tasks.pop((label, seed))
        progress = self._read(label, seed) or {}
        if self.live is not None:
            self.live.update(task, completed=progress.get('max_iters', 0),
                             metric=self._metric(progress))
        self.say(f'[benchmark] {label} seed {seed}: done in '
                 f'{_clock(progress.get("time", 0))} '
                 f'{self._metric(progress)}'.rstrip())

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def _wait_below(running, limit, progress):
    """Wait until fewer than ``limit`` of ``running`` (process, method,
    seed, log) are left, showing progress; a failed run stops the
    benchmark, as with one job at a time, and shows its log's end."""
    while len(running) >= limit:
        for entry in list(running):
            proc, method, seed, log = entry
            if proc.poll() is None:
                continue
            running.remove(entry)
            log.close()
            if proc.returncode != 0:
                for other, _, _, _ in running:
                    other.terminate()
                progress.close()
                with open(log.name) as f:
                    tail = f.readlines()[-25:]
                raise SystemExit(
                    ''.join(tail) + f'[benchmark] {method} seed {seed} '
                    f'failed (exit {proc.returncode}); the end of its log '
                    f'is above, all of it in {log.name}.')
            progress.finish(label_of(method), seed)
        if len(running) >= limit:
            progress.poll()
            time.sleep(min(0.5, progress.every))


def main():
    args = parse_args()
    if args.run_one:
        run_one(args, args.run_one[0], int(args.run_one[1]))
        return
    os.makedirs(args.out, exist_ok=True)
    labels = [label_of(m) for m in args.methods]
    for method in args.methods:
        if base_method(method).endswith('_eq') and (
                'arsam' not in labels
                or labels.index('arsam') > labels.index(label_of(method))):
            raise SystemExit(f'--methods: {method} takes its budget from '
                             'ARSAM\'s measured rate: list arsam before it.')
    if args.jobs < 1:
        raise SystemExit(f'--jobs {args.jobs}: give 1 or more.')
    check_shared_options(args.cfg_options)
    env = dict(os.environ)
    if args.jobs > 1:
        env.setdefault('OMP_NUM_THREADS',
                       str(max(1, (os.cpu_count() or 1) // args.jobs)))
    # Seeds outer, so methods interleave in time; the equal-budget
    # controls wait for ARSAM's runs, whose rates they take.
    order = [(m, s) for s in args.seeds for m in args.methods]
    waves = [[(m, s) for m, s in order if not base_method(m).endswith('_eq')],
             [(m, s) for m, s in order if base_method(m).endswith('_eq')]]
    progress = RunsProgress(args.out, args.progress_every)
    for wave in waves:
        running = []
        for method, seed in wave:
            label = label_of(method)
            path = osp.join(args.out, f'{label}_seed{seed}.json')
            if args.summarize_only or (args.skip_done and osp.exists(path)):
                continue
            _wait_below(running, args.jobs, progress)
            cmd = [sys.executable, __file__, *sys.argv[1:], '--run-one',
                   method, str(seed)]
            work_dir = osp.join(args.out, f'{label}_seed{seed}')
            os.makedirs(work_dir, exist_ok=True)
            if osp.exists(osp.join(work_dir, PROGRESS_FILE)):  # a rerun's
                os.remove(osp.join(work_dir, PROGRESS_FILE))
            log = open(osp.join(work_dir, 'run.log'), 'w')
            progress.start(label, seed)
            running.append((subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT), method,
                seed, log))
        _wait_below(running, 1, progress)
    progress.close()
    results = []
    for method, seed in order:
        with open(osp.join(args.out,
                           f'{label_of(method)}_seed{seed}.json')) as f:
            results.append(json.load(f))
    summarize(args, results)


if __name__ == '__main__':
    main()
