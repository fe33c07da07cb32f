"""Shipped configs under 2-process DDP (gloo) and with --amp on CPU."""
import os
import os.path as osp

import pytest
import torch
import torch.multiprocessing as mp
from test_ddp import _free_port

from arsam_mm.runner import main

# Two gloo processes per config (mp.spawn), and a config run.
pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SEG = 'segmentation/fcn_r50-d8_cityscapes-512x1024_arsam.py'
POSE = 'pose/td-hm_res50_coco-256x192_arsam.py'


def _worker(rank, port, config, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2')
    torch.set_num_threads(1)
    from pathlib import Path

    from mmengine.runner import Runner
    from test_configs import smoke_cfg

    from arsam_mm.runner.train import _prepare_cpu_distributed
    cfg = smoke_cfg(osp.join(ROOT, 'configs', config),
                    Path(out_dir) / 'work', iters=4)
    cfg.optim_wrapper.window = 2  # a 2-step warm-up, then adaptive
    cfg.optim_wrapper.budget = 0.5  # 2 of the 4 iterations: the warm-up
    cfg.launcher = 'pytorch'
    _prepare_cpu_distributed(cfg)  # what tools/train.py does on CPU
    runner = Runner.from_cfg(cfg)
    runner.train()
    wrapper = runner.optim_wrapper
    torch.save(dict(params=dict(runner.model.module.named_parameters()),
                    sam_iters=wrapper.sam_iters),
               osp.join(out_dir, f'rank{rank}.pth'))


@pytest.mark.parametrize('config', [SEG, POSE])
def test_config_ddp_ranks_identical(config, tmp_path):
    mp.spawn(_worker, args=(_free_port(), config, str(tmp_path)), nprocs=2,
             join=True)
    r0, r1 = [torch.load(tmp_path / f'rank{r}.pth', weights_only=False)
              for r in range(2)]
    assert 1 <= r0['sam_iters'] < 4 and r0['sam_iters'] == r1['sam_iters']
    for name, value in r0['params'].items():
        assert torch.equal(value, r1['params'][name]), name


def test_amp_flag_trains_a_config_on_cpu(tmp_path):
    summary = main([
        osp.join(ROOT, 'configs', SEG), '--amp', '--embedded-data',
        '--work-dir', str(tmp_path), '--cfg-options', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
        'val_dataloader.dataset.indices=4',  # mIoU on 4 val images
        'optim_wrapper.warmup_iters=1', 'optim_wrapper.budget=0.5'
    ])
    assert summary['iters'] == 2 and summary['sam_iters'] == 1
    assert 'mIoU' in summary
