"""Dataset types that create their generated files on first use.

Each is the upstream package's own dataset class (same loading, pipelines
and metrics) with one addition: ``__init__`` first generates the files under
``data_root`` if they are missing. Registered in the upstream package's
registry, so they resolve under its ``default_scope``; each block is skipped
when that package is not installed.
"""

__all__ = []

try:
    from mmseg.datasets import BaseSegDataset
    from mmseg.registry import DATASETS as SEG_DATASETS
except ImportError:  # pragma: no cover
    SEG_DATASETS = None

if SEG_DATASETS is not None:
    from .shapes_seg import SHAPE_CLASSES, SHAPE_PALETTE, generate_shapes_dataset

    @SEG_DATASETS.register_module()
    class ShapesSegDataset(BaseSegDataset):
        """The generated shapes segmentation set (``generate``: arguments of
        :func:`generate_shapes_dataset`)."""

        METAINFO = dict(classes=SHAPE_CLASSES, palette=SHAPE_PALETTE)

        def __init__(self, data_root: str, generate: dict = None, **kwargs):
            generate_shapes_dataset(data_root, **(generate or {}))
            kwargs.setdefault('img_suffix', '.png')
            kwargs.setdefault('seg_map_suffix', '.png')
            super().__init__(data_root=data_root, **kwargs)

    __all__.append('ShapesSegDataset')

try:
    from mmpose.datasets import CocoDataset
    from mmpose.registry import DATASETS as POSE_DATASETS
except ImportError:  # pragma: no cover
    POSE_DATASETS = None

if POSE_DATASETS is not None:
    from .stick_figures import generate_stick_figures

    @POSE_DATASETS.register_module()
    class StickFigureCocoDataset(CocoDataset):
        """The generated stick-figure keypoint set, read as COCO
        (``generate``: arguments of :func:`generate_stick_figures`)."""

        def __init__(self, data_root: str, generate: dict = None, **kwargs):
            generate_stick_figures(data_root, **(generate or {}))
            super().__init__(data_root=data_root, **kwargs)

    __all__.append('StickFigureCocoDataset')

try:
    from mmpretrain.datasets import CustomDataset
    from mmpretrain.registry import DATASETS as CLS_DATASETS
except ImportError:  # pragma: no cover
    CLS_DATASETS = None

if CLS_DATASETS is not None:
    from .shapes_cls import SHAPE_CLS_CLASSES, generate_shapes_cls_dataset

    @CLS_DATASETS.register_module()
    class ShapesClsDataset(CustomDataset):
        """The generated shapes classification set as class folders
        (``generate``: arguments of :func:`generate_shapes_cls_dataset`)."""

        METAINFO = dict(classes=SHAPE_CLS_CLASSES)

        def __init__(self, data_root: str, generate: dict = None, **kwargs):
            generate_shapes_cls_dataset(data_root, **(generate or {}))
            kwargs.setdefault('with_label', True)
            super().__init__(data_root=data_root, **kwargs)

    __all__.append('ShapesClsDataset')

