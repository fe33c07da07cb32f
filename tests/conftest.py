"""Shared fixtures: small real mmseg models and the generated data set."""
import copy
import os

import pytest
import torch
from mmengine.logging import MessageHub

import arsam_mm  # noqa: F401  (stack shims, registrations)

# Two threads in every process: the release-0.1 checkpoints were written
# with two and resume bit for bit only with the same reductions, and the
# learning tests' thresholds were set so.
os.environ.setdefault('OMP_NUM_THREADS', '2')
torch.set_num_threads(2)

SMALL_SET = dict(num_train=24, num_val=8, img_size=32, seed=0)


@pytest.fixture(autouse=True)
def _fresh_message_hub(request):
    """Each test gets its own current MessageHub: a run that an earlier
    test left unfinished (``loop_stage`` still 'train') must not tell this
    test's wrapper how long its run is."""
    MessageHub.get_instance(f'arsam_mm-test:{request.node.nodeid}')


def tiny_segmentor_cfg(num_classes: int = 4) -> dict:
    """mmseg's EncoderDecoder with a narrow ResNetV1c-18 and an FCN head."""
    norm_cfg = dict(type='BN', requires_grad=True)
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_val=0,
            seg_pad_val=255,
            size=(32, 32)),
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            stem_channels=8,
            base_channels=8,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            dilations=(1, 1, 2, 4),
            strides=(1, 2, 1, 1),
            norm_cfg=norm_cfg,
            contract_dilation=True),
        decode_head=dict(
            type='FCNHead',
            in_channels=64,
            in_index=3,
            channels=16,
            num_convs=1,
            concat_input=False,
            dropout_ratio=0.0,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def build_segmentor(seed: int = 0):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(tiny_segmentor_cfg())
    model.init_weights()
    return model


def shapes_loader_cfg(data_root: str, split: str = 'train',
                      batch_size: int = 4, shuffle: bool = False) -> dict:
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs'),
    ]
    return dict(
        batch_size=batch_size,
        num_workers=0,
        persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=shuffle),
        dataset=dict(
            type='ShapesSegDataset',
            data_root=data_root,
            generate=SMALL_SET,
            data_prefix=dict(
                img_path=f'img_dir/{split}', seg_map_path=f'ann_dir/{split}'),
            pipeline=pipeline))


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('data') / 'shapes')
    arsam_mm.generate_shapes_dataset(root, **SMALL_SET)
    return root


@pytest.fixture(scope='session')
def seg_batches(shapes_root):
    """A few preprocessed-ready raw batches from mmseg's own pipeline."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope('mmseg')
    loader = Runner.build_dataloader(shapes_loader_cfg(shapes_root))
    return [copy.deepcopy(b) for b, _ in zip(loader, range(6))]


def _runner_cfg(tmp_path, model, data_root, optim_wrapper, max_iters,
                experiment_name, **kwargs) -> dict:
    train = shapes_loader_cfg(data_root)
    # The batches and their order of DefaultSampler(shuffle=False), without
    # the 2 s pause mmengine's iter-based loop takes each time it restarts
    # a finite loader (24 images are 6 iterations).
    train['sampler'] = dict(type='InfiniteSampler', shuffle=False)
    cfg = dict(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=train,
        optim_wrapper=optim_wrapper,
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=10**6),
        default_scope='mmseg',
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=10**6)),
        randomness=dict(seed=0),
        log_level='WARNING',
        experiment_name=experiment_name)
    cfg.update(kwargs)
    return cfg


def make_runner(tmp_path, model, data_root, optim_wrapper, max_iters,
                **kwargs):
    """A real mmengine Runner on the generated set (mmseg scope)."""
    from mmengine.runner import Runner
    kwargs.setdefault('experiment_name', f'exp{id(model)}')
    return Runner(**_runner_cfg(tmp_path, model, data_root, optim_wrapper,
                                max_iters, **kwargs))


def watch_forward(model):
    """The trainable parameters of ``model``, the weights each forward of
    its backbone ran at (a list, one entry per forward) and the last
    gradient of each parameter (position -> tensor)."""
    params = [p for p in model.parameters() if p.requires_grad]
    seen, grads = [], {}
    model.backbone.register_forward_pre_hook(
        lambda *a: seen.append([p.detach().clone() for p in params]))
    for i, p in enumerate(params):
        p.register_hook(lambda g, i=i: grads.__setitem__(i, g.clone()))
    return params, seen, grads


def record_sam_step(policy, first_grads, sam_grads, grad_scale=None,
                    index=None):
    """One SAM step through the policy protocol, both passes finite."""
    kept = policy.keep_first_grads(first_grads, index)
    return policy.on_sam_step(kept, sam_grads, grad_scale, index, None,
                              lambda norm: True)


def make_flexible_runner(tmp_path, model, data_root, optim_wrapper,
                         max_iters, strategy=None, **kwargs):
    """mmengine's FlexibleRunner, set up as :func:`make_runner`."""
    from mmengine.runner import FlexibleRunner
    kwargs.setdefault('experiment_name', f'flex{id(model)}')
    return FlexibleRunner(**_runner_cfg(
        tmp_path, model, data_root, optim_wrapper, max_iters,
        strategy=strategy or dict(type='SingleDeviceStrategy'), **kwargs))
