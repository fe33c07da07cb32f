"""tools/benchmark.py end to end on the embedded data: passes are counted
by instrumentation and agree with what each method must do."""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest

# Each test starts the benchmark tools as subprocesses.
pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_benchmark_counts_passes_and_writes_plots(tmp_path):
    out = tmp_path / 'bench'
    cmd = [
        sys.executable, osp.join(ROOT, 'tools', 'benchmark.py'),
        osp.join(ROOT, 'configs', 'demo', 'fcn_r18_shapes_arsam.py'),
        '--iters', '6', '--seeds', '0', '--methods', 'sgd', 'sam', 'arsam',
        'a2=arsam', 'looksam', 'msam', 'periodic_eq', 'half=sam',
        '--embedded-data',
        '--test', '--out', str(out), '--jobs', '2', '--cfg-options',
        # Validate and test on 4 images: the split's metric is all that is
        # checked here.
        'train_dataloader.batch_size=2', 'val_dataloader.dataset.indices=4',
        'test_dataloader.dataset.indices=4', 'arsam:optim_wrapper.window=2',
        'arsam:optim_wrapper.warmup_iters=2', 'arsam:optim_wrapper.budget=0.5',
        'a2:optim_wrapper.budget=0.34', 'looksam:optim_wrapper.k=3',
        'msam:optim_wrapper.rho=0.3', 'half:optim_wrapper.second_pass_share=0.5'
    ]
    subprocess.run(cmd, check=True, cwd=str(tmp_path))
    results = json.loads((out / 'results.json').read_text())
    rows = results['summary']
    assert rows['sgd']['forwards'] == 6 and rows['sgd']['backwards'] == 6
    assert rows['sam']['forwards'] == 12 and rows['sam']['backwards'] == 12
    assert rows['looksam']['forwards'] == 8  # SAM at iterations 0 and 3
    arsam = rows['arsam']
    assert arsam['forwards'] == 9  # the budget: 0.5 of 6, warm-up included
    assert arsam['forwards'] == 6 + round(arsam['sam_rate'] * 6)
    # A labelled variant (LABEL=METHOD) runs with its own options.
    assert rows['a2']['forwards'] == 8  # floor(0.34 * 6) = 2 SAM iterations
    assert (out / 'a2_seed0.json').exists()
    assert rows['msam']['forwards'] == 6  # SGD's cost
    # Passes count examples: SAM's second pass on 1 of the 2 images.
    assert rows['sam']['passes'] == 24
    assert rows['half']['forwards'] == 12 and rows['half']['passes'] == 18
    # Equal budget: periodic SAM at ARSAM's rate, a fractional period, so
    # exactly as many SAM iterations as ARSAM took (with --jobs 2 it waits
    # for ARSAM's run).
    assert rows['periodic_eq']['forwards'] == arsam['forwards']
    assert results['metric'] == 'mIoU'
    # --test: the table reports the test set, read after training; val kept.
    assert results['split'] == 'test'
    for run in results['runs']:
        assert 'mIoU' in run['test_metrics'] and 'mIoU' in run['metrics']
        assert 'records' not in run  # they stay in LABEL_seedN.json
    assert rows['sam']['metric_mean'] == results['runs'][1]['test_metrics'][
        'mIoU']
    for name in ('sam_rate.png', 'metric_vs_time.png', 'grad_psf_norms.png',
                 'metric_vs_passes.png', 'arsam_schedule.png',
                 'metric_and_cost.png'):
        assert (out / name).stat().st_size > 1000
    # tools/pareto.py: one point per (method, run); passes per iteration.
    table = subprocess.run([
        sys.executable, osp.join(ROOT, 'tools', 'pareto.py'), str(out),
        f'{out}:again', '--metric', 'mIoU', '--split', 'test', '--png',
        str(tmp_path / 'pareto.png')
    ], check=True, capture_output=True, text=True).stdout
    lines = [line.split() for line in table.splitlines()[1:-1]]
    assert ['sam', 'bench', '4.00'] == lines[1][:3]
    assert ['again', 'bench', '2.00'] == [
        row[:3] for row in lines if row[0] == 'again'][0]
    assert (tmp_path / 'pareto.png').stat().st_size > 1000
    # tools/gain_frontier.py: one column per setting, passes against SAM's.
    frontier = subprocess.run([
        sys.executable, osp.join(ROOT, 'tools', 'gain_frontier.py'),
        f'demo={out}', '--line', 'ARSAM=a2,arsam', '--png',
        str(tmp_path / 'frontier.png')
    ], check=True, capture_output=True, text=True).stdout
    rows_out = {line.split()[0]: line for line in frontier.splitlines()[1:]}
    assert '(0.67x)' in rows_out['a2'] and '(1.00x)' in rows_out['sam']
    assert (tmp_path / 'frontier.png').stat().st_size > 1000

    # --skip-done: only the (method, seed) whose JSON is missing runs again.
    kept = (out / 'sam_seed0.json').stat().st_mtime_ns
    (out / 'sgd_seed0.json').unlink()
    log = subprocess.run(cmd + ['--skip-done'], check=True, text=True,
                         capture_output=True, cwd=str(tmp_path)).stdout
    started = re.findall(r'\[benchmark\] (\S+ seed \d+): started', log)
    assert started == ['sgd seed 0']
    assert (out / 'sam_seed0.json').stat().st_mtime_ns == kept
    assert (out / 'sgd_seed0.json').exists()


def test_benchmark_step_synthetic_batch_at_config_size():
    """benchmark_step --synthetic: a random batch of the config's real
    input size (no data set), every row timed, here with fake-quant."""
    out = subprocess.run([
        sys.executable, osp.join(ROOT, 'tools', 'benchmark_step.py'),
        osp.join(ROOT, 'configs', 'classification',
                 'resnet18_cifar10_arsam.py'),
        '--synthetic', '--device', 'cpu', '--iters', '1', '--warmup', '0',
        '--batch-size', '2', '--quant', '4', '4'
    ], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    assert 'input: synthetic, W4A4' in out
    rows = [line.split('  ')[0] for line in out.splitlines()
            if line.startswith(('plain SGD', 'hand-written', 'SAMOptim',
                                'ARSAM', 'LookSAM'))]
    assert rows == ['plain SGD (OptimWrapper)', 'hand-written foreach SAM',
                    'SAMOptimWrapper', 'ARSAM reuse iteration',
                    'ARSAM SAM iteration', 'LookSAM reuse iteration',
                    'ARSAM run (budget 0.2)', 'LookSAM run (k=5)'], rows


def test_synthetic_batch_takes_a_shape_where_the_config_names_none():
    """A Fashion-MNIST config has no crop: ``--shape H W`` (which the
    error message names) gives the size; the label range comes from the
    backbone, which classifies itself there."""
    from mmengine.config import Config

    from arsam_mm.runner.synthetic import synthetic_batch
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'classification',
        'lenet5bn_fashion-mnist-noisy40_arsam.py'))
    with pytest.raises(ValueError, match='--shape H W'):
        synthetic_batch(cfg, 2)
    batch = synthetic_batch(cfg, 3, (32, 32))
    assert [tuple(x.shape) for x in batch['inputs']] == [(1, 32, 32)] * 3
    assert all(0 <= int(s.gt_label) < 10 for s in batch['data_samples'])


def test_benchmark_accumulation_reports_kept_bytes_and_step_times():
    """The kept micro-batches are the preprocessed inputs and labels: for
    Cityscapes crops (3x512x1024 fp32 inputs, int64 labels) 20 MiB per
    micro-batch of 2, N times that for N micro-batches."""
    out = subprocess.run([
        sys.executable, osp.join(ROOT, 'tools', 'benchmark_accumulation.py'),
        osp.join(ROOT, 'configs', 'segmentation',
                 'fcn_r50-d8_cityscapes-512x1024_arsam.py'),
        '--memory-only', '--counts', '1', '4'
    ], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    assert 'one preprocessed micro-batch: 20.00 MiB' in out
    assert 'N=4: 80.00 MiB kept' in out
    out = subprocess.run([
        sys.executable, osp.join(ROOT, 'tools', 'benchmark_accumulation.py'),
        '--iters', '1', '--counts', '1', '2', '--device', 'cpu'
    ], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    rows = [line.split() for line in out.splitlines()
            if line.strip().startswith(('1 ', '2 '))]
    assert [row[:2] for row in rows] == [['1', '2'], ['2', '4']]


def test_synthetic_batch_matches_the_seg_config():
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from arsam_mm.runner.synthetic import synthetic_batch
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'segmentation',
        'fcn_r50-d8_cityscapes-512x1024_arsam.py'))
    init_default_scope('mmseg')
    batch = synthetic_batch(cfg, 2)
    assert [tuple(x.shape) for x in batch['inputs']] == [(3, 512, 1024)] * 2
    label = batch['data_samples'][0].gt_sem_seg.data
    assert label.shape == (1, 512, 1024) and int(label.max()) < 19


def test_a_smaller_shape_is_what_the_seg_model_sees():
    """--shape 32 32 on a Cityscapes config: the preprocessor would pad
    the batch back to 512x1024 (a CPU check of gpu_check.sh once ran an
    hour at that size) unless its size follows."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from arsam_mm.runner.synthetic import set_input_size, synthetic_batch
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'segmentation',
        'fcn_r50-d8_cityscapes-512x1024_arsam.py'))
    init_default_scope('mmseg')
    set_input_size(cfg, (32, 32))
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    data = preprocessor(synthetic_batch(cfg, 2, (32, 32)), training=True)
    assert tuple(data['inputs'].shape) == (2, 3, 32, 32)


def test_gain_kept_per_seed():
    """(acc - acc_SGD) / (acc_SAM - acc_SGD), per seed, then mean +- std."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'benchmark', osp.join(ROOT, 'tools', 'benchmark.py'))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    accs = dict(sgd=[50.0, 60.0], sam=[70.0, 70.0], arsam=[65.0, 69.0])
    by_method = {m: [dict(seed=s, metrics=dict(acc=a))
                     for s, a in enumerate(v)] for m, v in accs.items()}
    rows = {m: {} for m in accs}
    bench._gain_kept(by_method, rows, 'acc')
    assert rows['sam']['gain_kept_mean'] == 1.0
    assert rows['sgd']['gain_kept_mean'] == 0.0
    # seed 0: 15 / 20 = 0.75, seed 1: 9 / 10 = 0.9
    assert abs(rows['arsam']['gain_kept_mean'] - 0.825) < 1e-12
    assert abs(rows['arsam']['gain_kept_std'] - 0.10606601717798) < 1e-9
    # --test: the same rule on the test split, val left alone.
    for runs in by_method.values():
        for run in runs:
            run['test_metrics'] = dict(acc=run['metrics']['acc'] / 2)
    rows = {m: {} for m in accs}
    bench._gain_kept(by_method, rows, 'acc', 'test_metrics')
    assert abs(rows['arsam']['gain_kept_mean'] - 0.825) < 1e-12
    by_method['arsam'][0]['test_metrics']['acc'] = 30.0  # 5 / 10
    bench._gain_kept(by_method, rows, 'acc', 'test_metrics')
    assert abs(rows['arsam']['gain_kept_mean'] - 0.7) < 1e-12


@pytest.mark.parametrize('option', ['optim_wrapper.beta=0.9',
                                    'optim_wrapper.type=SAMOptimWrapper'])
def test_a_shared_wrapper_option_the_switch_would_drop_is_refused(
        tmp_path, option):
    # Each method replaces the config's wrapper, keeping only the optimizer,
    # paramwise_cfg, clip_grad and rho: beta given for all would silently
    # train every ARSAM at its default beta. (--summarize-only: nothing
    # would train if the check were gone.)
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'benchmark.py'),
           osp.join(ROOT, 'configs', 'demo', 'fcn_r18_shapes_arsam.py'),
           '--methods', 'arsam', '--out', str(tmp_path), '--summarize-only',
           '--cfg-options', 'optim_wrapper.rho=0.1', option]
    done = subprocess.run(cmd, capture_output=True, text=True,
                          cwd=str(tmp_path))
    assert done.returncode != 0
    assert (f'--cfg-options {option}: each method replaces the config\'s '
            'optim_wrapper') in done.stderr
    assert f'arsam:{option}' in done.stderr


def test_plain_progress_says_evaluating_once(tmp_path):
    """In a log (no terminal) a run that has finished training says it is
    evaluating, once: the last iteration's line used to repeat, ETA 0:00,
    all through the final val/test."""
    import importlib.util
    import io
    spec = importlib.util.spec_from_file_location(
        'benchmark', osp.join(ROOT, 'tools', 'benchmark.py'))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    stream = io.StringIO()
    progress = bench.RunsProgress(str(tmp_path), every=0, stream=stream)
    progress.start('sam', 0)
    run_dir = tmp_path / 'sam_seed0'
    run_dir.mkdir()
    for done in (5, 10, 10, 10):
        (run_dir / bench.PROGRESS_FILE).write_text(json.dumps(
            dict(iter=done, max_iters=10, time=2.0 * done, metrics={})))
        progress.poll()
    lines = stream.getvalue().splitlines()[1:]  # after "started"
    assert lines == ['[benchmark] sam seed 0: 5/10 iterations, 0:10 '
                     'elapsed, ETA 0:10',
                     '[benchmark] sam seed 0: 10 iterations in 0:20, '
                     'evaluating']
