"""tools/gain_table.py: the share of SAM's gain per seed, by hand."""
import json
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / 'tools' / 'gain_table.py'


def _run(label, seed, value, key='accuracy/top1'):
    return dict(label=label, seed=seed, metrics={key: value})


def test_gain_kept_per_seed_on_the_seeds_with_sgd_and_sam(tmp_path):
    runs = [_run('sgd', 0, 70.0), _run('sam', 0, 80.0), _run('sgd', 1, 60.0),
            _run('sam', 1, 70.0), _run('late', 0, 75.0), _run('late', 1, 72.0),
            _run('late', 2, 99.0)]  # seed 2 has no SGD/SAM to compare with
    pose = [_run('sgd', 0, 0.40, 'coco/AP'), _run('sam', 0, 0.60, 'coco/AP'),
            _run('at50', 0, 0.45, 'coco/AP')]
    path = tmp_path / 'runs.json'
    path.write_text(json.dumps(dict(cls=dict(split='val', runs=runs),
                                    pose=dict(runs=pose))))
    out = subprocess.run([sys.executable, str(TOOL), str(path)], check=True,
                         capture_output=True, text=True).stdout
    late = next(line for line in out.splitlines() if 'late' in line)
    assert 'n=3' in late and 'kept 0.50 1.20 (mean 0.85)' in late
    at50 = next(line for line in out.splitlines() if 'at50' in line)
    assert '45.00' in at50 and 'kept 0.25' in at50  # AP in points


def test_markdown_table_a_row_per_method_clean_twins_in_points(tmp_path):
    def run(label, seed, value, time):
        return dict(_run(label, seed, value), train_time=time)

    noisy = [run('sgd', 0, 70.0, 10.0), run('sam', 0, 80.0, 20.0),
             run('sgd', 1, 60.0, 10.0), run('sam', 1, 70.0, 20.0),
             run('ars', 0, 79.0, 12.0), run('ars', 1, 67.0, 13.0)]
    clean = [run('sgd', 0, 90.0, 10.0), run('sgd', 1, 91.0, 10.0),
             run('ars', 0, 89.0, 12.0), run('ars', 1, 91.0, 12.0),
             # Another session's run: its time is not compared.
             dict(run('new', 0, 90.0, 99.0), session='later')]
    path = tmp_path / 'runs.json'
    path.write_text(json.dumps(dict(noisy=dict(runs=noisy),
                                    clean=dict(clean=True, runs=clean))))
    out = subprocess.run(
        [sys.executable, str(TOOL), str(path), '--markdown', '--labels',
         'sgd', 'sam', 'ars', 'new'], check=True, capture_output=True,
        text=True).stdout.splitlines()
    assert out[0] == '| method | noisy | clean |'
    assert out[2] == '| sgd | 65.00 (2), 1.00x | 90.50 (2), 1.00x |'
    assert out[3] == '| sam | 10.00 +- 0.00 pt (2), 2.00x |  |'  # SAM's gain
    # kept 0.9 and 0.7; clean: -1 and 0 points; time 1.2x, 1.3x / 1.2x
    assert out[4] == ('| ars | 0.80 +- 0.14 (2), 1.25x | '
                      '-0.50 +- 0.71 pt (2), 1.20x |')
    assert out[5] == '| new |  | 0.00 +- 0.00 pt (1) |'
