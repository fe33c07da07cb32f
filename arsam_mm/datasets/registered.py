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

