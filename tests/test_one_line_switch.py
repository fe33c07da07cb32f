"""The one-line switch on an upstream mmseg config, run by tools/train.py."""
import os.path as osp
import textwrap

import mmseg
from conftest import shapes_loader_cfg
from mmengine.config import Config

from arsam_mm.runner import main

UPSTREAM = 'fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py'


def _write_child(tmp_path):
    path = tmp_path / 'fcn_r18_arsam.py'
    path.write_text(textwrap.dedent(f"""
        _base_ = 'mmseg::{UPSTREAM}'
        optim_wrapper = dict(type='ARSAMOptimWrapper', rho=0.05)
    """))
    return str(path)


def test_child_config_keeps_the_upstream_optimizer(tmp_path):
    child = Config.fromfile(_write_child(tmp_path))
    parent = Config.fromfile(
        osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', UPSTREAM))
    expected = dict(parent.optim_wrapper, type='ARSAMOptimWrapper', rho=0.05)
    got = child.optim_wrapper.to_dict()
    got.pop('_scope_', None)  # added by the mmseg:: base reference
    assert got == expected
    assert child.optim_wrapper.optimizer.type == 'SGD'


def _run(tmp_path, options, resume=False):
    # The test's data overrides are nested dicts, so they travel in a dumped
    # config rather than through --cfg-options strings.
    cfg = Config.fromfile(_write_child(tmp_path))
    cfg.merge_from_dict(options)
    path = tmp_path / 'merged.py'
    cfg.dump(str(path))
    argv = [str(path), '--work-dir', str(tmp_path / 'work'),
            '--cfg-options', f"train_cfg.max_iters={options['max_iters']}"]
    if resume:
        argv.append('--resume')
    return main(argv)


def test_train_script_runs_the_switched_config(tmp_path, shapes_root):
    train = shapes_loader_cfg(shapes_root, batch_size=2)
    train['sampler'] = dict(type='InfiniteSampler', shuffle=True)
    val = shapes_loader_cfg(shapes_root, 'val', 4)
    for loader in (train, val):
        loader['_delete_'] = True  # replace the Cityscapes loaders whole
    options = {
        'model.pretrained': None,
        'model.data_preprocessor.size': (32, 32),
        'train_dataloader': train,
        'train_cfg.val_interval': 4,
        'val_dataloader': val,
        'default_hooks.checkpoint.interval': 4,
        'optim_wrapper.window': 2,
        'optim_wrapper.warmup_iters': 2,
        'optim_wrapper.budget': 0.5,
        'max_iters': 4,
    }
    summary = _run(tmp_path, options)
    assert summary['iters'] == 4
    assert summary['sam_iters'] >= 2  # the warm-up took two passes
    assert 'mIoU' in summary
    assert (tmp_path / 'work' / 'iter_4.pth').exists()
    # --resume continues from that checkpoint (torch>=2.6 loading works).
    summary = _run(tmp_path, dict(options, max_iters=6), resume=True)
    assert summary['iters'] == 6


def test_train_script_resumes_a_plain_run_with_arsam(tmp_path, shapes_root):
    """An upstream SGD run, then ``--resume CKPT`` with the one-line
    switch: ARSAM takes over the iterations left, with the SGD momentum."""
    train = shapes_loader_cfg(shapes_root, batch_size=2)
    train['sampler'] = dict(type='InfiniteSampler', shuffle=True)
    val = shapes_loader_cfg(shapes_root, 'val', 4)
    for loader in (train, val):
        loader['_delete_'] = True
    options = {
        'model.pretrained': None,
        'model.data_preprocessor.size': (32, 32),
        'train_dataloader': train,
        'val_dataloader': val,
        'train_cfg.val_interval': 10**6,
        'default_hooks.checkpoint.interval': 4,
    }
    plain = Config.fromfile(
        osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', UPSTREAM))
    plain.merge_from_dict(options)
    plain_path = tmp_path / 'plain.py'
    plain.dump(str(plain_path))
    main([str(plain_path), '--work-dir', str(tmp_path / 'sgd'),
          '--cfg-options', 'train_cfg.max_iters=4'])
    switched = Config.fromfile(_write_child(tmp_path))
    switched.merge_from_dict(dict(options, **{
        'optim_wrapper.window': 2, 'optim_wrapper.warmup_iters': 1,
        'optim_wrapper.budget': 0.5}))
    switched_path = tmp_path / 'switched.py'
    switched.dump(str(switched_path))
    summary = main([str(switched_path), '--work-dir', str(tmp_path / 'arsam'),
                    '--resume', str(tmp_path / 'sgd' / 'iter_4.pth'),
                    '--cfg-options', 'train_cfg.max_iters=8'])
    # ARSAM drove iterations 5 to 8: half of them took two passes.
    assert summary['iters'] == 4
    assert summary['sam_iters'] == 2
    assert (tmp_path / 'arsam' / 'iter_8.pth').exists()
