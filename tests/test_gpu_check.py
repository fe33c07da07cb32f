"""tools/gpu_check.sh, the one-call GPU check of the mmengine path, run on
a CPU with tiny shapes: every table it makes on a GPU, and the --amp
training run."""
import os
import os.path as osp
import subprocess

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.mark.slow
def test_the_gpu_check_runs_on_a_cpu_with_tiny_shapes(tmp_path):
    # fp32 only, to keep this a few minutes on 2 cores (the --amp path is
    # the train.py run at the end, and tests/test_amp.py).
    env = dict(os.environ, DEVICE='cpu', ITERS='1', WARMUP='0',
               SEG_SHAPE='32 32', SEG_BATCH='2', POSE_SHAPE='32 32',
               POSE_BATCH='2', TRAIN_ITERS='2', DTYPES='fp32',
               OUT=str(tmp_path))
    run = subprocess.run(['bash', osp.join(ROOT, 'tools', 'gpu_check.sh')],
                         env=env, capture_output=True, text=True)
    log = (tmp_path / 'gpu_check.txt').read_text()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for config in ('fcn_r50-d8_cityscapes-512x1024_arsam.py',
                   'td-hm_res50_coco-256x192_arsam.py'):
        assert 'config: configs/' in log and config in log, config
    for row in ('SAMOptimWrapper', 'ARSAM run (budget 0.2)',
                'LookSAM run (k=5)', 'peak MB'):
        assert row in log, row
    assert 'failed' not in log
    assert 'arsam_mm summary' in log  # the --amp training run ended
