"""Dataset types that create their generated files on first use.

Each is the upstream package's own dataset class (same loading, pipelines
and metrics) with one addition: ``__init__`` first generates the files under
``data_root`` if they are missing. Registered in the upstream package's
registry, so they resolve under its ``default_scope``; each block is skipped
when that package is not installed.
"""

__all__ = []


class _GeneratedOnFirstUse:
    """Generate the files under ``data_root`` (``generate``: arguments of
    :attr:`generator`), then initialise the upstream dataset class."""

    generator = None  # staticmethod(generate_...) in each subclass
    defaults: dict = {}  # upstream arguments that fit the generated files

    def __init__(self, data_root: str, generate: dict = None, **kwargs):
        self.generator(data_root, **(generate or {}))
        for key, value in self.defaults.items():
            kwargs.setdefault(key, value)
        super().__init__(data_root=data_root, **kwargs)

try:
    from mmseg.datasets import BaseSegDataset
    from mmseg.registry import DATASETS as SEG_DATASETS
except ImportError:  # pragma: no cover
    SEG_DATASETS = None

if SEG_DATASETS is not None:
    from .shapes_seg import SHAPE_CLASSES, SHAPE_PALETTE, generate_shapes_dataset

    @SEG_DATASETS.register_module()
    class ShapesSegDataset(_GeneratedOnFirstUse, BaseSegDataset):
        """The generated shapes segmentation set."""

        METAINFO = dict(classes=SHAPE_CLASSES, palette=SHAPE_PALETTE)
        generator = staticmethod(generate_shapes_dataset)
        defaults = dict(img_suffix='.png', seg_map_suffix='.png')

    __all__.append('ShapesSegDataset')

    from .garment_scenes import (
        GARMENT_CLASSES,
        GARMENT_PALETTE,
        generate_garment_scenes,
    )

    @SEG_DATASETS.register_module()
    class GarmentScenesDataset(_GeneratedOnFirstUse, BaseSegDataset):
        """Fashion-MNIST garment scenes with object-level label noise in
        the training split (``garment_scenes.py``)."""

        METAINFO = dict(classes=GARMENT_CLASSES, palette=GARMENT_PALETTE)
        generator = staticmethod(generate_garment_scenes)
        defaults = dict(img_suffix='.png', seg_map_suffix='.png')

    __all__.append('GarmentScenesDataset')

try:
    from mmpose.datasets import CocoDataset
    from mmpose.registry import DATASETS as POSE_DATASETS
except ImportError:  # pragma: no cover
    POSE_DATASETS = None

if POSE_DATASETS is not None:
    from .stick_figures import generate_stick_figures

    @POSE_DATASETS.register_module()
    class StickFigureCocoDataset(_GeneratedOnFirstUse, CocoDataset):
        """The generated stick-figure keypoint set, read as COCO."""

        generator = staticmethod(generate_stick_figures)

    __all__.append('StickFigureCocoDataset')

try:
    from mmpretrain.datasets import CustomDataset
    from mmpretrain.registry import DATASETS as CLS_DATASETS
except ImportError:  # pragma: no cover
    CLS_DATASETS = None

if CLS_DATASETS is not None:
    from .shapes_cls import SHAPE_CLS_CLASSES, generate_shapes_cls_dataset

    @CLS_DATASETS.register_module()
    class ShapesClsDataset(_GeneratedOnFirstUse, CustomDataset):
        """The generated shapes classification set as class folders."""

        METAINFO = dict(classes=SHAPE_CLS_CLASSES)
        generator = staticmethod(generate_shapes_cls_dataset)
        defaults = dict(with_label=True)

    __all__.append('ShapesClsDataset')


if CLS_DATASETS is not None:
    import copy

    import numpy as np
    from mmengine.logging import print_log

    from .noisy_labels import NOISE_TYPES, corrupt_labels
    from .split_check import check_split_agrees

    @CLS_DATASETS.register_module()
    class NoisyLabelDataset:
        """Any mmpretrain classification dataset with label noise and/or
        a fixed-size random subset (``noisy_labels.py``).

        Args:
            dataset (dict | BaseDataset): the dataset, or its config.
            noise_rate (float): fraction of labels changed. Defaults to 0.
            noise_type (str): ``'symmetric'`` or ``'pair'``.
            num_samples (int, optional): keep this many samples, drawn
                without replacement (all when None).
            data_seed (int): seed of the subset and the noise, independent
                of the training seed. Defaults to 0.
            holdout (bool): take the samples that ``num_samples`` and
                ``data_seed`` leave out instead, with clean labels: a
                validation split carved from the training set, disjoint
                from the (noisy) training subset. Defaults to False.
            lazy_init (bool): defer loading, as mmengine's wrappers do.

        Each sample's info keeps its clean label as ``clean_gt_label``
        (pack it with ``PackInputs(algorithm_keys=['clean_gt_label'])`` to
        measure the fit to clean and to noisy labels); evaluation stays on
        a clean test set with mmpretrain's metrics.

        Examples:
            >>> train_dataloader = dict(dataset=dict(
            ...     type='NoisyLabelDataset', noise_rate=0.4,
            ...     num_samples=10000, dataset=dict(type='FashionMNIST',
            ...     data_root='data/fashion_mnist', split='train')))
        """

        def __init__(self, dataset, noise_rate: float = 0.0,
                     noise_type: str = 'symmetric', num_samples=None,
                     data_seed: int = 0, holdout: bool = False,
                     lazy_init: bool = False):
            from arsam._checks import check_number, front_end
            with front_end('NoisyLabelDataset'):
                check_number('noise_rate', noise_rate, low=0, high=1)
                check_number('num_samples', num_samples, integer=True,
                             optional=True, low=1)
                check_number('data_seed', data_seed, integer=True)
            if holdout and (num_samples is None or noise_rate > 0):
                raise ValueError(
                    'NoisyLabelDataset: holdout=True takes the samples a '
                    'num_samples subset leaves out, with clean labels: set '
                    'num_samples (as in the training split) and noise_rate=0.')
            if noise_type not in NOISE_TYPES:
                raise ValueError(
                    f'NoisyLabelDataset: noise_type={noise_type!r}; choose '
                    f'one of {NOISE_TYPES}.')
            # Before the build: a split that reads other files than it
            # names is refused, not loaded.
            check_split_agrees(dataset, owner='NoisyLabelDataset')
            if isinstance(dataset, dict):
                dataset = CLS_DATASETS.build(dataset)
            self.dataset = dataset
            self.noise_rate, self.noise_type = noise_rate, noise_type
            self.num_samples, self.data_seed = num_samples, data_seed
            self.holdout = holdout
            self._fully_initialized = False
            if not lazy_init:
                self.full_init()

        @property
        def metainfo(self) -> dict:
            return copy.deepcopy(self.dataset.metainfo)

        def full_init(self) -> None:
            if self._fully_initialized:
                return
            self.dataset.full_init()
            size = len(self.dataset)
            if self.num_samples is not None and self.num_samples > size:
                raise ValueError(
                    f'NoisyLabelDataset: num_samples={self.num_samples} '
                    f'but the dataset has {size} samples.')
            rng = np.random.default_rng(self.data_seed)
            self.indices = (np.arange(size) if self.num_samples is None
                            else np.sort(rng.choice(size, self.num_samples,
                                                    replace=False)))
            if self.holdout:
                self.indices = np.setdiff1d(np.arange(size), self.indices)
            labels = np.asarray(self.dataset.get_gt_labels())
            self.clean_labels = labels[self.indices].astype(np.int64)
            self.noisy_labels = corrupt_labels(
                self.clean_labels, len(self.dataset.metainfo['classes']),
                self.noise_rate, self.noise_type, rng)
            self.noise_fraction = float(
                np.mean(self.noisy_labels != self.clean_labels))
            print_log(
                f'NoisyLabelDataset: {len(self.indices)} of {size} samples '
                f'({"held out, " if self.holdout else ""}data_seed '
                f'{self.data_seed}), {self.noise_type} noise: '
                f'{self.noise_fraction:.4f} of the labels changed.',
                logger='current')
            self._fully_initialized = True

        def get_data_info(self, idx: int) -> dict:
            info = self.dataset.get_data_info(int(self.indices[idx]))
            info['gt_label'] = int(self.noisy_labels[idx])
            info['clean_gt_label'] = int(self.clean_labels[idx])
            return info

        def get_gt_labels(self) -> np.ndarray:
            return self.noisy_labels.copy()

        def __getitem__(self, idx: int):
            return self.dataset.pipeline(self.get_data_info(idx))

        def __len__(self) -> int:
            return len(self.indices)

    __all__.append('NoisyLabelDataset')
