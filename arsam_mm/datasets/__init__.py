from .noisy_labels import NOISE_TYPES, corrupt_labels
from .registered import *  # noqa: F401,F403
from .shapes_cls import SHAPE_CLS_CLASSES, generate_shapes_cls_dataset
from .shapes_seg import SHAPE_CLASSES, generate_shapes_dataset
from .stick_figures import COCO_KEYPOINTS, generate_stick_figures

__all__ = [
    'SHAPE_CLASSES', 'SHAPE_CLS_CLASSES', 'COCO_KEYPOINTS',
    'generate_shapes_dataset', 'generate_shapes_cls_dataset',
    'generate_stick_figures', 'corrupt_labels', 'NOISE_TYPES'
]
