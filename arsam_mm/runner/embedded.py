"""``--embedded-data``: point any seg/pose/cls config at generated data.

Keeps the config's model, optimizer wrapper, schedule and (for pose and
classification) its pipelines; swaps the data sets for the ones the package
generates under ``data/arsam_embedded/``, drops pretrained-weight downloads
and shrinks inputs so a smoke run fits a CPU:

* mmseg: the shapes set at 64x64 (4 classes, heads resized to match);
* mmpose: the stick-figure COCO set, model and codec at half resolution;
* mmpretrain: the shapes classification set (3 classes) via CustomDataset;
  dataset wrappers (label noise, subsets) are replaced too, their inner
  pipeline kept. The smoke run's small batch gets the recipe's learning
  rate per sample (the linear rule, for SGD recipes): at the full-batch
  rate on 4 images a step, runs ended at chance and LSQ step sizes blew
  up past every weight.

The generated sets have a train and a val split: the test loader reads
val, as the rewritten config says.
"""
import copy

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

__all__ = ['use_embedded_data', 'walk_dicts', 'EMBEDDED_ROOT']

EMBEDDED_ROOT = 'data/arsam_embedded'
_SIZE_KEYS = ('input_size', 'heatmap_size', 'in_featuremap_size')


def walk_dicts(node, visit):
    """Call ``visit(dict)`` on every dict inside ``node``."""
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            walk_dicts(value, visit)
    elif isinstance(node, (list, tuple)):
        for value in node:
            walk_dicts(value, visit)


def _drop_pretrained(node):
    if node.get('pretrained') is not None and isinstance(
            node.get('pretrained'), str):
        node['pretrained'] = None
    init_cfg = node.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        node['init_cfg'] = None


def _loader(cfg_loader, dataset, batch_size, shuffle):
    if not shuffle:
        # Validation keeps upstream's batch size: some evaluators assume it
        # (mmpose's bottom-up CID validates one image at a time).
        batch_size = cfg_loader.get('batch_size', batch_size)
    loader = ConfigDict(
        batch_size=batch_size,
        num_workers=0,
        persistent_workers=False,
        sampler=copy.deepcopy(cfg_loader.get('sampler', None)) or dict(
            type='DefaultSampler', shuffle=shuffle),
        dataset=dataset)
    if loader.sampler.get('type') == 'DefaultSampler':
        loader.sampler.shuffle = shuffle
    return loader


def _set_num_classes(head, num_classes):
    heads = head if isinstance(head, (list, tuple)) else [head]
    for item in heads:
        if isinstance(item, dict) and 'num_classes' in item:
            item['num_classes'] = num_classes


def _segmentation(cfg, root, batch_size):
    from arsam_mm.datasets import SHAPE_CLASSES
    load = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
    pipelines = dict(
        train=load + [dict(type='RandomFlip', prob=0.5),
                      dict(type='PackSegInputs')],
        val=load + [dict(type='PackSegInputs')])
    for split, key in (('train', 'train_dataloader'),
                       ('val', 'val_dataloader'), ('val', 'test_dataloader')):
        if key not in cfg:
            continue
        dataset = dict(
            type='ShapesSegDataset', data_root=f'{root}/shapes_seg',
            data_prefix=dict(img_path=f'img_dir/{split}',
                             seg_map_path=f'ann_dir/{split}'),
            pipeline=pipelines[split])
        cfg[key] = _loader(cfg[key], dataset, batch_size, split == 'train')
    model = cfg.model
    model.data_preprocessor.size = (64, 64)
    model.test_cfg = dict(mode='whole')
    for key in ('decode_head', 'auxiliary_head'):
        if model.get(key):
            _set_num_classes(model[key], len(SHAPE_CLASSES))


def _pose(cfg, root, batch_size):
    data_root = f'{root}/stick_figures/'
    for split, key in (('train', 'train_dataloader'),
                       ('val', 'val_dataloader'), ('val', 'test_dataloader')):
        if key not in cfg:
            continue
        dataset = copy.deepcopy(cfg[key].dataset)
        dataset.pop('bbox_file', None)
        dataset.pop('generate', None)  # the one embedded set for all
        dataset.update(
            type='StickFigureCocoDataset', data_root=data_root,
            ann_file=f'annotations/person_keypoints_{split}.json',
            data_prefix=dict(img=f'{split}/'))
        cfg[key] = _loader(cfg[key], dataset, batch_size, split == 'train')
    for key in ('val_evaluator', 'test_evaluator'):
        if key in cfg and isinstance(cfg[key], dict):
            cfg[key].ann_file = f'{data_root}annotations/' \
                'person_keypoints_val.json'

    def halve_sizes(node):  # codec, affine transform and heads together
        for key in _SIZE_KEYS:
            value = node.get(key)
            if isinstance(value, (list, tuple)) and len(value) == 2:
                node[key] = tuple(max(1, int(v) // 2) for v in value)

    # custom_hooks too: RTMPose's PipelineSwitchHook holds a second train
    # pipeline whose affine size must match the halved codec.
    for key in ('model', 'train_dataloader', 'val_dataloader',
                'test_dataloader', 'codec', 'custom_hooks'):
        if key in cfg:
            walk_dicts(cfg[key], halve_sizes)


LR_OPTION = 'optim_wrapper.optimizer.lr'


def _scale_sgd_lr(cfg, batch_size, options):
    """The linear rule for an SGD recipe trained here at ``batch_size``:
    ``lr * batch_size / base`` (base: the recipe's ``auto_scale_lr``
    batch, else its train batch). Not applied (and not logged) when the
    user's ``options`` set the learning rate themselves."""
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer') or {}
    if (optimizer.get('type') != 'SGD' or 'lr' not in optimizer
            or LR_OPTION in options):
        return
    base = (cfg.get('auto_scale_lr') or {}).get(
        'base_batch_size', cfg.train_dataloader.get('batch_size'))
    if base and base > batch_size:
        lr = optimizer['lr']
        optimizer['lr'] = lr * batch_size / base
        print_log(f'--embedded-data: lr {lr:g} is for batches of {base}; '
                  f'at {batch_size} it is {optimizer["lr"]:g} (the linear '
                  'rule).', logger='current')


def _classification(cfg, root, batch_size):
    from arsam_mm.datasets import SHAPE_CLS_CLASSES
    mean = cfg.model.get('data_preprocessor', None) or cfg.get(
        'data_preprocessor', {})
    grayscale = len(mean.get('mean', [0, 0, 0])) == 1
    load = dict(type='LoadImageFromFile')
    if grayscale:
        load['color_type'] = 'grayscale'
    for split, key in (('train', 'train_dataloader'),
                       ('val', 'val_dataloader'), ('val', 'test_dataloader')):
        if key not in cfg:
            continue
        source = cfg[key].dataset
        while 'pipeline' not in source and isinstance(
                source.get('dataset'), dict):
            source = source['dataset']  # a wrapper (NoisyLabelDataset, ...)
        pipeline = [
            t for t in source.get('pipeline', [])
            if t.get('type') != 'LoadImageFromFile'
        ]
        dataset = dict(
            type='ShapesClsDataset', data_root=f'{root}/shapes_cls',
            data_prefix=split, pipeline=[copy.deepcopy(load)] + pipeline)
        cfg[key] = _loader(cfg[key], dataset, batch_size, split == 'train')
    num_classes = len(SHAPE_CLS_CLASSES)
    _set_num_classes(cfg.model.head, num_classes)
    for holder in (cfg.model.get('data_preprocessor'),
                   cfg.get('data_preprocessor')):
        if isinstance(holder, dict) and 'num_classes' in holder:
            holder['num_classes'] = num_classes
    for key in ('val_evaluator', 'test_evaluator'):
        if key in cfg and isinstance(cfg[key], dict):
            cfg[key] = dict(type='Accuracy', topk=(1, ))


def use_embedded_data(cfg: Config, root: str = EMBEDDED_ROOT,
                      batch_size: int = 4, options=()) -> Config:
    """Rewrite ``cfg`` in place for a smoke run on generated data.

    ``options``: the keys the user sets with ``--cfg-options`` (merged
    after this): what they set is not rewritten here (the learning rate's
    linear rule)."""
    scope = cfg.get('default_scope', None)
    handlers = dict(mmseg=_segmentation, mmpose=_pose,
                    mmpretrain=_classification)
    if scope not in handlers:
        raise ValueError(
            f'--embedded-data: default_scope={scope!r} is not one of '
            f'{sorted(handlers)}; point the config at data yourself.')
    if scope == 'mmpretrain':
        _scale_sgd_lr(cfg, batch_size, options)
    handlers[scope](cfg, root, batch_size)
    walk_dicts(cfg.model, _drop_pretrained)
    cfg.load_from = None
    return cfg
