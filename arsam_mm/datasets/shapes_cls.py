"""A generated image-classification set: which shape is in the picture.

Written as class folders (``train/disc/00000.png``) so mmpretrain's own
``CustomDataset`` reads it; used for smoke runs of classification configs
(mmpretrain's CIFAR classes check the md5 of the real batch files, so no
generated file can stand in for CIFAR).
"""
import os
import os.path as osp

import cv2
import numpy as np

from .shapes_seg import SHAPE_CLASSES, draw_shape, generate_once

__all__ = ['SHAPE_CLS_CLASSES', 'generate_shapes_cls_dataset']

SHAPE_CLS_CLASSES = SHAPE_CLASSES[1:]


def generate_shapes_cls_dataset(data_root: str,
                                num_train: int = 600,
                                num_val: int = 150,
                                img_size: int = 32,
                                seed: int = 0) -> str:
    """Create ``data_root/{train,val}/<class>/*.png`` unless it exists."""
    spec = dict(kind='shapes_cls', num_train=num_train, num_val=num_val,
                img_size=img_size, seed=seed, version=4)

    def write(tmp):
        rng = np.random.RandomState(seed)
        for split, num in (('train', num_train), ('val', num_val)):
            for name in SHAPE_CLS_CLASSES:
                os.makedirs(osp.join(tmp, split, name))
            for idx in range(num):
                cls = idx % len(SHAPE_CLS_CLASSES) + 1
                # A flat, noisy background (unlike the segmentation set's
                # textures): the class is the shape's outline.
                img = np.empty((img_size, img_size, 3), np.float32)
                img[:] = rng.randint(0, 100, size=3)
                label = np.zeros((img_size, img_size), np.uint8)
                draw_shape(rng, img, label, cls, img_size, (0.25, 0.42))
                img[label > 0] = rng.randint(150, 256, size=3)  # contrast
                img += rng.normal(0, 12, size=img.shape)
                img = np.clip(img, 0, 255).astype(np.uint8)
                cv2.imwrite(
                    osp.join(tmp, split, SHAPE_CLASSES[cls], f'{idx:05d}.png'),
                    img)

    return generate_once(data_root, spec, write)
