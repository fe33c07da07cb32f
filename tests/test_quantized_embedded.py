"""The shipped quantized configs on the embedded data, as a user's
`tools/train.py CONFIG --embedded-data` runs them: every classification
config leaves chance in one epoch (150 iterations), and the segmentation
and pose families (their ARSAM configs) end a short run with no quantized
layer whose integer weights are all zero (an LSQ step grown past every
weight of its layer)."""
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from arsam_mm.quant.lsq import lsq_to_int
from arsam_mm.runner import main

pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
QUANTIZED = sorted(glob.glob(osp.join(ROOT, 'configs', 'quantized', '*.py')))
CLASSIFICATION = [p for p in QUANTIZED
                  if Config.fromfile(p).get('default_scope') == 'mmpretrain']
DENSE = [osp.join(ROOT, 'configs', 'quantized', name) for name in (
    'fcn_r50-d8_cityscapes-512x1024_w4a4_arsam.py',
    'fcn_r50-d8_cityscapes-512x1024_w8a8_arsam.py',
    'td-hm_res50_coco-256x192_w8a8_arsam.py')]


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """One folder for every run: data/arsam_embedded is made once."""
    return tmp_path_factory.mktemp('quantized_embedded')


def _dead_layers(checkpoint) -> list:
    state = torch.load(checkpoint, map_location='cpu',
                       weights_only=False)['state_dict']
    dead = []
    for key, step in state.items():
        if key.endswith('.weight_step'):
            weight = state[key[:-len('_step')]]
            # The integers the export writes (int8 holds every grid here).
            if not lsq_to_int(weight, step, -128, 127).any():
                dead.append(key[:-len('.weight_step')])
    return dead


def _above_chance(images, classes, p_value=0.01) -> float:
    """The accuracy (%) a model guessing at random reaches with
    probability below ``p_value`` (one-sided binomial): 43.3 for 150
    images of 3 balanced classes. A collapsed run predicts one class,
    33.3."""
    chance = 1 / classes

    def tail(k):
        return sum(math.comb(images, i) * chance**i *
                   (1 - chance)**(images - i) for i in range(k, images + 1))

    return 100 * next(k for k in range(images + 1)
                      if tail(k) < p_value) / images


def _short(path):
    return osp.basename(path)


@pytest.mark.parametrize('path', CLASSIFICATION, ids=_short)
def test_a_quantized_classification_config_leaves_chance(path, workspace,
                                                         monkeypatch):
    monkeypatch.chdir(workspace)
    work = workspace / _short(path)
    summary = main([path, '--embedded-data', '--work-dir', str(work),
                    '--cfg-options', 'train_cfg.max_epochs=1',
                    'train_cfg.val_interval=1', 'randomness.seed=0'])
    assert summary['accuracy/top1'] >= _above_chance(150, 3), summary
    assert not _dead_layers(work / 'epoch_1.pth')


@pytest.mark.parametrize('path', DENSE, ids=_short)
def test_dense_quantized_configs_keep_every_layer_alive(path, workspace,
                                                        monkeypatch):
    monkeypatch.chdir(workspace)
    work = workspace / _short(path)
    loop = Config.fromfile(path).train_cfg
    # 40 iterations of batch 4 either way.
    length = (['train_cfg.max_iters=40'] if loop.get('type') ==
              'IterBasedTrainLoop' else ['train_cfg.max_epochs=1',
                                         'train_dataloader.dataset.indices=160'])
    main([path, '--embedded-data', '--work-dir', str(work), '--cfg-options',
          *length, 'train_cfg.val_interval=1000',
          'val_dataloader.dataset.indices=4',
          'default_hooks.checkpoint.interval=1000',
          'default_hooks.checkpoint.save_last=True'])
    checkpoint = sorted(work.glob('*.pth'))[-1]
    assert not _dead_layers(checkpoint), checkpoint
