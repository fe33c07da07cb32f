"""The split a config names is the split it reads.

mmpretrain 1.2.0's ``MNIST`` and ``FashionMNIST`` (and any subclass) pick
their files by ``test_mode``, not by ``split``: ``load_data_list`` reads
the training files unless ``test_mode=True``, and ``split`` is only
checked to be ``'train'`` or ``'test'``. ``split='test'`` alone therefore
evaluates on the 60,000 training images. :func:`check_dataset_splits`
refuses that combination wherever this package builds or wraps such a
data set (``tools/train.py``'s config check, ``tools/benchmark.py``,
``NoisyLabelDataset``), before anything trains.
"""
from arsam._checks import ConfigError

__all__ = ['check_dataset_splits', 'check_split_agrees']

_LOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _mnist_base():
    try:
        from mmpretrain.datasets import MNIST
    except ImportError:  # pragma: no cover
        return None
    return MNIST


def _reads_by_test_mode(dataset) -> bool:
    """Whether ``dataset`` (a built data set or its config) is one of the
    mmpretrain classes that read their files by ``test_mode``."""
    base = _mnist_base()
    if base is None:
        return False
    if isinstance(dataset, dict):
        type_name = dataset.get('type')
        if isinstance(type_name, type):
            return issubclass(type_name, base)
        if not isinstance(type_name, str):
            return False
        from mmpretrain.registry import DATASETS
        cls = DATASETS.get(type_name.split('.')[-1])
        return cls is not None and issubclass(cls, base)
    return isinstance(dataset, base)


def check_split_agrees(dataset, key: str = 'dataset', owner: str = '') -> None:
    """Refuse an mmpretrain MNIST-type data set (config or built) whose
    ``split`` and ``test_mode`` name different files; ``key`` is where it
    sits in the config (``test_dataloader.dataset``), ``owner`` who took
    it (``''`` for a top-level config key)."""
    if not _reads_by_test_mode(dataset):
        return
    if isinstance(dataset, dict):
        split = dataset.get('split', 'train')
        test_mode = bool(dataset.get('test_mode', False))
        name = str(dataset.get('type')).split('.')[-1]
    else:
        split, test_mode = dataset.split, bool(dataset.test_mode)
        name = type(dataset).__name__
    if (split == 'test') == test_mode:
        return
    reads = 'test' if test_mode else 'training'
    raise ConfigError(
        f'{key}.test_mode', f"split={split!r} with test_mode={test_mode}: "
        f"mmpretrain's {name} picks its files by test_mode, not split, so "
        f'this reads the {reads} images',
        f"Set test_mode={split == 'test'} next to split={split!r}.",
        owner=owner)


def _walk(node, key, visit):
    """``visit(dict, key)`` on ``node`` and every dict below it, with its
    dotted key in the config."""
    if isinstance(node, dict):
        visit(node, key)
        for name, value in node.items():
            _walk(value, f'{key}.{name}', visit)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            _walk(value, f'{key}.{index}', visit)


def check_dataset_splits(cfg) -> None:
    """:func:`check_split_agrees` on every data set of the config's
    train, val and test loaders (wrappers' inner data sets included)."""
    for loader_key in _LOADER_KEYS:
        loader = cfg.get(loader_key, None)
        if isinstance(loader, dict) and 'dataset' in loader:
            _walk(loader['dataset'], f'{loader_key}.dataset',
                  check_split_agrees)
