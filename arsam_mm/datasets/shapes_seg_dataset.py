"""``ShapesSegDataset``: mmseg's ``BaseSegDataset`` over the generated set."""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .shapes_seg import SHAPE_CLASSES, SHAPE_PALETTE, generate_shapes_dataset

__all__ = ['ShapesSegDataset']


@DATASETS.register_module()
class ShapesSegDataset(BaseSegDataset):
    """The generated shapes set; created under ``data_root`` on first use.

    Args:
        generate (dict): arguments of :func:`generate_shapes_dataset`
            (``num_train``, ``num_val``, ``img_size``, ``seed``).
        **kwargs: ``BaseSegDataset`` arguments (``data_root``,
            ``data_prefix``, ``pipeline``, ...).
    """

    METAINFO = dict(classes=SHAPE_CLASSES, palette=SHAPE_PALETTE)

    def __init__(self, data_root: str, generate: dict = None, **kwargs):
        generate_shapes_dataset(data_root, **(generate or {}))
        kwargs.setdefault('img_suffix', '.png')
        kwargs.setdefault('seg_map_suffix', '.png')
        super().__init__(data_root=data_root, **kwargs)
