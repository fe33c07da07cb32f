"""``tools/train.py``'s checks before anything is built (and before the
Runner prints the config): the config and checkpoint paths, the data the
loaders read, and the arguments of this package's hooks. Each failure is a
:class:`ConfigError`: one line naming the key and the fix.
"""
import copy
import difflib
import glob
import os.path as osp

from arsam._checks import ConfigError

__all__ = ['check_config_path', 'check_resume_path', 'check_data_present',
           'check_own_hooks']

_OWN_HOOKS = ('FakeQuantHook', 'SAMRunInfoHook', 'SAMTraceHook')
_PREPARE = 'bash tools/prepare_fashion_mnist.sh'


def check_config_path(path: str) -> None:
    """A config path that is not a file, with the closest shipped ones."""
    if osp.isfile(path):
        return
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    known = sorted({osp.relpath(p) for root in ('.', repo) for p in glob.glob(
        osp.join(root, 'configs', '**', '*.py'), recursive=True)})
    close = difflib.get_close_matches(path, known, n=3, cutoff=0.6)
    raise ConfigError(
        'config', f'{path!r} is not a file',
        f'Did you mean {" or ".join(close)}?' if close else
        'Give the path of a config file (the shipped ones are under '
        'configs/).', owner='')


def check_resume_path(resume) -> None:
    """``--resume CKPT`` naming a checkpoint that is not there."""
    if resume in (None, 'auto') or '://' in str(resume):
        return
    if not osp.isfile(resume):
        folder = osp.dirname(resume) or '.'
        found = sorted(glob.glob(osp.join(folder, '*.pth')))
        raise ConfigError(
            '--resume', f'{resume!r} is not a file',
            (f'Checkpoints in {folder}: '
             f'{", ".join(osp.basename(p) for p in found[-3:])}'
             if found else 'Give a checkpoint file') +
            ', or pass --resume without a value to resume the latest in '
            'the work dir.', owner='')


def _dataset_class(type_name, scope):
    from mmengine.registry import DATASETS
    if not isinstance(type_name, str):
        return type_name if isinstance(type_name, type) else None
    with DATASETS.switch_scope_and_registry(scope) as registry:
        return registry.get(type_name)


def _missing_data(dataset: dict, cls):
    """What of ``dataset``'s files is missing: a file name, '' for the
    whole ``data_root``, or None (nothing missing, or nothing to check:
    data the package generates, or that the class downloads itself)."""
    import inspect

    from arsam_mm.datasets.registered import _GeneratedOnFirstUse
    root = dataset.get('data_root')
    if (issubclass(cls, _GeneratedOnFirstUse) or not isinstance(root, str)
            or not root or '://' in root):
        return None
    parameter = inspect.signature(cls.__init__).parameters.get('download')
    if dataset.get('download', parameter is not None
                   and parameter.default is True):
        return None
    if hasattr(cls, 'train_list'):  # mmpretrain's (Fashion)MNIST
        for name, _ in cls.train_list + cls.test_list:
            name = name[:-3] if name.endswith('.gz') else name
            if not osp.isfile(osp.join(root, name)):
                return name
        return None
    return None if osp.isdir(root) else ''


def check_data_present(cfg, loaders=('train_dataloader', 'val_dataloader')
                       ) -> None:
    """Every data set of ``loaders`` (what training reads) is where the
    config says (data the package generates, and data a class downloads
    itself, are not checked)."""
    scope = cfg.get('default_scope', None)

    def visit(node, key):
        if isinstance(node, dict):
            cls = _dataset_class(node.get('type'), scope)
            if cls is not None and 'data_root' in node:
                missing = _missing_data(node, cls)
                if missing is not None:
                    raise _no_data(key, node['data_root'], missing, cls)
            for name, value in node.items():
                if name != 'pipeline':
                    visit(value, f'{key}.{name}')

    for loader in loaders:
        dataset = (cfg.get(loader) or {}).get('dataset')
        visit(dataset, f'{loader}.dataset')


def _no_data(key, root, missing, cls) -> ConfigError:
    if missing:
        fix = (f'Run `{_PREPARE}` (Fashion-MNIST from Debian\'s '
               'dataset-fashion-mnist, no download hub needed)'
               if 'Fashion' in cls.__name__ else 'Put the data set there')
        return ConfigError(
            f'{key}.data_root', f'{root!r} has no {missing}',
            f'{fix}, or smoke-run on generated data with --embedded-data.',
            owner='')
    return ConfigError(
        f'{key}.data_root', f'{root!r} does not exist',
        'Put the data set there (the upstream docs give its layout), set '
        'the path with --cfg-options, or smoke-run on generated data with '
        '--embedded-data.', owner='')


def check_own_hooks(cfg) -> None:
    """Build this package's hooks of ``custom_hooks`` once, so a bad
    argument is refused now, each naming the hook and the fix."""
    from mmengine.registry import HOOKS

    from arsam._checks import check_unknown_arguments, front_end
    for hook in cfg.get('custom_hooks', None) or []:
        if isinstance(hook, dict) and hook.get('type') in _OWN_HOOKS:
            args = {k: v for k, v in hook.items() if k not in ('type',
                                                               'priority')}
            with front_end(hook['type']):
                check_unknown_arguments(HOOKS.get(hook['type']), args)
            HOOKS.build(copy.deepcopy(hook))
