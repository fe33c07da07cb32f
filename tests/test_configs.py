"""Every shipped config: loads, changes only the optimizer wrapper relative
to its base, builds from the upstream registry, trains 2 iterations
with its SAM-family wrapper on the embedded data and validates with its
own evaluator (on a few val images)."""
import copy
import functools
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from arsam_mm.runner.embedded import use_embedded_data

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)
# Keys a SAM-family child may add to its base's optim_wrapper
# (docs/usage.md).
DOCUMENTED = {'type', 'rho', 'adaptive', 'eta', 'eps', 'exclude',
              'sync_first_pass', 'window', 'warmup_iters', 'warmup_epochs',
              'beta', 'max_reuse', 'a1', 'a2', 'max_p', 'schedule', 'budget',
              'placement', 'blocks', 'stat_tensors', 'seed', 'tail', 'k',
              'alpha', 'share', '_scope_'}
SAM_FAMILY = ('SAMOptimWrapper', 'ARSAMOptimWrapper', 'LookSAMOptimWrapper',
              'LatePhaseSAMOptimWrapper')


@functools.lru_cache(maxsize=None)
def _parsed(path):
    return Config.fromfile(path)


def load_config(path):
    """``Config.fromfile(path)``, parsed once per session (the tests below
    read each config up to four times); a copy the caller may change."""
    return copy.deepcopy(_parsed(path))


def _base_of(path):
    text = open(path).read()
    match = re.search(r"^_base_ = '([^']+)'", text, re.M)
    return match.group(1) if match else None


def _load_base(ref, path):
    if '::' in ref:
        scope, rel = ref.split('::')
        import importlib
        pkg = importlib.import_module(scope)
        return load_config(
            osp.join(osp.dirname(pkg.__file__), '.mim', 'configs', rel))
    return load_config(osp.join(osp.dirname(path), ref))


def _unscoped(node):
    """Drop the ``_scope_`` keys that ``mmseg::``-style bases add."""
    if isinstance(node, dict):
        return {k: _unscoped(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [_unscoped(v) for v in node]
    return node


def _short(path):
    return osp.relpath(path, osp.join(ROOT, 'configs'))


@pytest.mark.parametrize('path', CONFIGS, ids=_short)
def test_only_the_optimizer_wrapper_changes(path):
    cfg = load_config(path)
    ref = _base_of(path)
    if ref is None or path.endswith(('_sgd.py', '_adam.py', '_plain.py')):
        # A recipe or demo config: its own source of truth.
        assert cfg.optim_wrapper.get('type', 'OptimWrapper') in (
            'OptimWrapper', 'SAMOptimWrapper', 'ARSAMOptimWrapper')
        return
    base = _load_base(ref, path)
    mine, theirs = _unscoped(cfg.to_dict()), _unscoped(base.to_dict())
    for key in set(mine) | set(theirs):
        if key in ('optim_wrapper', 'custom_imports'):
            continue
        if key == 'custom_hooks' and '/quantized/' in path:
            continue  # the FakeQuantHook line of a quantized twin
        assert mine.get(key) == theirs.get(key), key
    ow, base_ow = mine['optim_wrapper'], theirs['optim_wrapper']
    if '/quantized/' in path:  # same wrapper as the float config it extends
        assert ow == base_ow
        return
    assert ow['type'] in SAM_FAMILY
    for key in set(ow) | set(base_ow):
        if key not in DOCUMENTED:
            assert ow.get(key) == base_ow.get(key), key


VAL_IMAGES = 4


def smoke_cfg(path, work_dir, iters=2, data_root=None):
    cfg = load_config(path)
    use_embedded_data(cfg, root=data_root or str(work_dir.parent / 'embedded'),
                      batch_size=2)
    cfg.work_dir = str(work_dir)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=10**6)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                        interval=10**6, save_last=False)
    cfg.log_level = 'WARNING'
    # mmengine validates after the last iteration: on a few images, so the
    # config's val pipeline and evaluator still run end to end.
    cfg.val_dataloader.dataset.indices = VAL_IMAGES
    cfg.optim_wrapper.setdefault('type', 'OptimWrapper')
    if 'ARSAM' in cfg.optim_wrapper.type:
        # One SAM, then a reuse step (the budget: 0.5 of 2 iterations).
        cfg.optim_wrapper.warmup_iters = 1
        cfg.optim_wrapper.budget = 0.5
    if 'LatePhase' in cfg.optim_wrapper.type:
        cfg.optim_wrapper.share = 0.5  # plain, then one SAM iteration
    return cfg


@pytest.fixture(scope='module')
def embedded_root(tmp_path_factory):
    """One embedded data folder for every config run, as a user's
    ``data/arsam_embedded`` serves every config (one set per task)."""
    return str(tmp_path_factory.mktemp('embedded'))


@pytest.mark.slow
@pytest.mark.parametrize(
    'path', [p for p in CONFIGS if 'demo' not in p], ids=_short)
def test_config_trains_two_iterations(path, tmp_path, embedded_root):
    cfg = smoke_cfg(path, tmp_path / 'work', data_root=embedded_root)
    runner = Runner.from_cfg(cfg)
    before = [p.detach().clone() for p in runner.model.parameters()]
    runner.train()
    wrapper = runner.optim_wrapper
    if hasattr(wrapper, 'sam_iters'):
        # SAM: both; ARSAM (budget 0.5 of 2) and LookSAM (k=5): the first;
        # late-phase SAM (share 0.5 of 2): the second.
        expected = 2 if type(wrapper).__name__ == 'SAMOptimWrapper' else 1
        assert wrapper.sam_iters == expected
    moved = [not torch.equal(a, b)
             for a, b in zip(before, runner.model.parameters())]
    assert sum(moved) > 0.5 * len(moved)
    # The config's evaluator scored the val images after training.
    assert len(runner.val_dataloader.dataset) == VAL_IMAGES
    scores = [k for k in runner.message_hub.log_scalars
              if k.startswith('val/') and not k.endswith('time')]
    assert scores, 'no val metric was logged'


def _mmpose_config(name):
    import os.path as osp

    import mmpose
    return Config.fromfile(osp.join(osp.dirname(mmpose.__file__), '.mim',
                                    'configs', 'body_2d_keypoint', name))


def _affine_sizes(node, found):
    if isinstance(node, dict):
        if node.get('type') == 'TopdownAffine':
            found.append(tuple(node['input_size']))
        for value in node.values():
            _affine_sizes(value, found)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _affine_sizes(value, found)
    return found


def test_embedded_data_scales_sizes_inside_custom_hooks(tmp_path):
    # RTMPose switches to a second train pipeline with PipelineSwitchHook;
    # its affine size must follow the halved codec (it used to stay at
    # 192x256: "mat1 and mat2 shapes cannot be multiplied").
    cfg = _mmpose_config('rtmpose/coco/rtmpose-s_8xb256-420e_coco-256x192.py')
    use_embedded_data(cfg, root=str(tmp_path))
    codec = tuple(cfg.codec['input_size'])
    assert codec == (96, 128)
    hooks = [h for h in cfg.custom_hooks if 'switch_pipeline' in h]
    assert hooks and set(_affine_sizes(hooks, [])) == {codec}
    assert set(_affine_sizes(cfg.train_dataloader, [])) == {codec}


def test_embedded_data_gives_every_pose_config_the_same_set(tmp_path):
    """A config's own ``generate`` arguments (noise, a test split) stay
    out of the shared embedded set, whose folder holds one spec."""
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'pose', 'td-hm_res18-w16_stick-figures-swap40_adam.py'))
    assert 'generate' in cfg.train_dataloader.dataset
    use_embedded_data(cfg, root=str(tmp_path))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert 'generate' not in cfg[key].dataset


def test_embedded_data_keeps_upstream_validation_batch_size(tmp_path):
    # Bottom-up CID validates one image at a time (mmpose asserts it).
    cfg = _mmpose_config('cid/coco/cid_hrnet-w32_8xb20-140e_coco-512x512.py')
    use_embedded_data(cfg, root=str(tmp_path), batch_size=4)
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.val_dataloader.batch_size == 1
    assert cfg.test_dataloader.batch_size == 1


def test_train_py_checks_accept_every_shipped_config():
    """tools/train.py's early argument checks (and their AMP twins under
    --amp) pass every shipped config: a scoped base's ``_scope_`` key, say,
    is not mistaken for a wrapper argument."""
    from arsam_mm.runner import check_config, switch_to_amp
    for path in CONFIGS:
        cfg = load_config(path)
        check_config(cfg)
        if 'SAM' in str(cfg.optim_wrapper.get('type')):
            switch_to_amp(cfg)
            check_config(cfg)


def test_embedded_data_leaves_a_chosen_lr_alone(tmp_path):
    """The smoke run scales an SGD recipe's lr to its 4-image batches,
    unless ``--cfg-options optim_wrapper.optimizer.lr=...`` chose one:
    then nothing is rescaled (nor logged as rescaled) under it."""
    path = osp.join(ROOT, 'configs', 'classification',
                    'resnet18_cifar10_arsam.py')
    cfg = Config.fromfile(path)
    recipe_lr = cfg.optim_wrapper.optimizer.lr
    use_embedded_data(cfg, root=str(tmp_path), batch_size=4)
    assert cfg.optim_wrapper.optimizer.lr < recipe_lr
    cfg = Config.fromfile(path)
    use_embedded_data(cfg, root=str(tmp_path), batch_size=4,
                      options={'optim_wrapper.optimizer.lr': 0.01})
    assert cfg.optim_wrapper.optimizer.lr == recipe_lr
