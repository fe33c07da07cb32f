from .shapes_seg import SHAPE_CLASSES, generate_shapes_dataset

__all__ = ['SHAPE_CLASSES', 'generate_shapes_dataset']

try:  # the dataset class needs mmsegmentation; the generator does not
    from .shapes_seg_dataset import ShapesSegDataset  # noqa: F401
    __all__.append('ShapesSegDataset')
except ImportError:  # pragma: no cover
    pass
