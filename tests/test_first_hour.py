"""What a new user meets first: the demo's console (progress, no
third-party deprecation noise, the table, plot paths and wall time) and
tools/train.py's one-line errors, each before the Runner prints the
config."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from arsam_mm.runner import cli

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools'))
import quiet  # noqa: E402  (tools/quiet.py)

NOISE = re.compile(r'Warning|deprecat|FileClient|HardDiskBackend', re.I)


@pytest.mark.slow
def test_the_demo_shows_progress_and_no_third_party_noise(tmp_path):
    out = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'run_demo.sh'), '--iters', '8',
         '--progress-every', '0.2', '--out', str(tmp_path / 'demo'),
         '--cfg-options', 'val_dataloader.dataset.indices=4'],
        capture_output=True, text=True, env=dict(os.environ))
    console = out.stdout + out.stderr
    assert out.returncode == 0, console[-3000:]
    noise = [line for line in console.splitlines() if NOISE.search(line)
             and not line.startswith('WARNING: Location')]  # pip's config
    assert not noise, noise
    for method in ('sgd', 'sam', 'arsam'):
        assert re.search(rf'\[benchmark\] {method} seed 0: \d+/8 iterations',
                         console), method
        assert re.search(rf'\[benchmark\] {method} seed 0: done in \d+:\d\d '
                         r'val mIoU [\d.]+', console), method
        log = tmp_path / 'demo' / f'{method}_seed0' / 'run.log'
        assert 'Config:' in log.read_text()  # the full log is kept
    assert re.search(r'^method .* val mIoU', console, re.M)
    assert 'Plots: work_dirs/demo/metric_and_cost.png' in console
    assert re.search(r'\[demo\] done in \d+ s', console)


def test_the_progress_file_appears_after_the_first_iteration(tmp_path,
                                                             shapes_root):
    """SAMTraceHook writes the run's progress right after iteration 1, not
    only once ``progress_every`` seconds have passed: a short run on a
    fast machine otherwise showed no iteration line before it ended."""
    import json

    from conftest import make_runner, tiny_segmentor_cfg
    runner = make_runner(
        tmp_path, tiny_segmentor_cfg(), shapes_root,
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01)), 2,
        custom_hooks=[dict(type='SAMTraceHook', progress_file='p.json',
                           progress_every=1e9)])
    runner.train()
    with open(tmp_path / 'p.json') as f:
        progress = json.load(f)
    assert (progress['iter'], progress['max_iters']) == (1, 2)


def _error_of(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        cli(argv)
    message = str(stop.value.code)
    printed = capsys.readouterr()
    assert 'Config:' not in printed.out + printed.err  # no config dump
    assert '\n' not in message, message
    return message


def test_a_wrong_config_path_names_the_closest_configs(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    message = _error_of(
        ['configs/quantized/lenet5bn_fashion-mnist-noisy40_w4a4_arsm.py'],
        capsys)
    assert message.startswith("train.py: error: config: 'configs/quantized/"
                              "lenet5bn_fashion-mnist-noisy40_w4a4_arsm.py' "
                              'is not a file. Did you mean configs/quantized/'
                              'lenet5bn_fashion-mnist-noisy40_w4a4_arsam.py')


def test_a_wrong_checkpoint_path_says_how_to_resume(capsys, tmp_path):
    (tmp_path / 'iter_4.pth').write_bytes(b'')
    message = _error_of(
        [osp.join(ROOT, 'configs', 'demo', 'fcn_r18_shapes_arsam.py'),
         '--resume', str(tmp_path / 'epoch_99.pth')], capsys)
    assert "--resume: '" in message and "epoch_99.pth' is not a file" in (
        message)
    assert 'Checkpoints in' in message and 'iter_4.pth' in message
    assert '--resume without a value' in message


def test_missing_fashion_mnist_names_the_script_and_embedded_data(
        capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no data/fashion_mnist here
    message = _error_of([osp.join(
        ROOT, 'configs', 'quantized',
        'lenet5bn_fashion-mnist-noisy40_w4a4_arsam.py')], capsys)
    assert message.startswith(
        'train.py: error: train_dataloader.dataset.dataset.data_root: '
        "'data/fashion_mnist' has no train-images-idx3-ubyte. Run `bash "
        'tools/prepare_fashion_mnist.sh`')
    assert message.endswith('or smoke-run on generated data with '
                            '--embedded-data.')


def test_a_missing_data_root_says_where_and_what_to_do(capsys, monkeypatch,
                                                       tmp_path):
    monkeypatch.chdir(tmp_path)
    message = _error_of([osp.join(
        ROOT, 'configs', 'segmentation',
        'fcn_r50-d8_cityscapes-512x1024_arsam.py')], capsys)
    assert message.startswith(
        "train.py: error: train_dataloader.dataset.data_root: "
        "'data/cityscapes/' does not exist.")
    assert '--embedded-data' in message


@pytest.mark.parametrize('option, expected', [
    ('custom_hooks.0.w_bits=9',
     'FakeQuantHook.w_bits: 9 is not a bit width in 2..8.'),
    ('custom_hooks.0.wbits=4',
     "FakeQuantHook.wbits: FakeQuantHook takes no argument 'wbits'. Did you "
     'mean w_bits'),
    ('custom_hooks.0.skip=[*a]',
     "FakeQuantHook.skip: '*a' is not a valid regex"),
])
def test_a_bad_hook_argument_is_one_line(capsys, option, expected):
    message = _error_of([
        osp.join(ROOT, 'configs', 'quantized',
                 'lenet5bn_fashion-mnist-noisy40_w4a4_arsam.py'),
        '--embedded-data', '--cfg-options', option], capsys)
    assert message.startswith(f'train.py: error: {expected}'), message


def test_the_filter_list_says_why_for_each_entry():
    for message, category, why in quiet.WARNINGS:
        assert re.compile(message) and issubclass(category, Warning) and why
    for message, why in quiet.LOG_LINES:
        assert re.compile(message) and why


def test_amp_with_a_plain_optimizer_wrapper_on_a_cpu_is_one_line(capsys):
    message = _error_of([
        osp.join(ROOT, 'configs', 'quantized',
                 'lenet5bn_fashion-mnist-noisy40_w4a4_sgd.py'),
        '--embedded-data', '--amp'], capsys)
    assert message.startswith(
        "train.py: error: --amp: the plain OptimWrapper's twin is mmengine's "
        'AmpOptimWrapper, which trains only on a GPU')
    assert 'SAM-family wrapper' in message


def _first_hour_commands():
    """Steps 3 to 5 of docs/usage.md's "The first hour", as written."""
    text = open(osp.join(ROOT, 'docs', 'usage.md')).read()
    block = text.split('## The first hour', 1)[1].split('```bash', 1)[1]
    block = block.split('```', 1)[0].replace('\\\n', ' ')
    return [line.split() for line in block.splitlines()
            if line.startswith('python ')]


@pytest.mark.slow
def test_the_first_hour_commands_run_as_written(tmp_path):
    """Smoke run on generated data, resume, export with its check, in a
    fresh folder (the configs and tools where a clone has them)."""
    commands = _first_hour_commands()
    assert [c[1] for c in commands] == [
        'tools/train.py', 'tools/train.py', 'tools/export_quantized.py']
    for name in ('configs', 'tools'):
        os.symlink(osp.join(ROOT, name), tmp_path / name)
    outputs = []
    for command in commands:
        run = subprocess.run([sys.executable] + command[1:], cwd=tmp_path,
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        outputs.append(run.stdout + run.stderr)
    assert re.search(r'resumed epoch: 1', outputs[1], re.I), outputs[1][-2000:]
    assert 'weights stored as int8' in outputs[2]
    assert re.search(r'OK: onnxruntime is [\d.]+ points from PyTorch',
                     outputs[2]), outputs[2]
