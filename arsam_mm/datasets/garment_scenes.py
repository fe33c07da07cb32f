"""Segmentation scenes made of Fashion-MNIST garments, with object-level
label noise in the training split (the segmentation family's setting).

Each scene pastes two or three garments (rescaled, tinted) onto a dimmed
textured background; a pixel is labelled with its garment's class (1..10) where the
garment's ink is visible, 0 elsewhere. In the training split a share
``noise_rate`` of the *objects* is relabelled with another class, drawn
uniformly (whole-object class flips, exactly ``round(noise_rate * n)`` of
them); validation and test stay clean. Train and val garments come from
disjoint parts of Fashion-MNIST's training images, test garments from its
test images, so a choice made on val never sees the test garments.

The Fashion-MNIST files must be on disk (``bash tools/prepare_fashion_mnist.sh``
puts them under ``data/fashion_mnist``); nothing is downloaded here.

Layout (mmseg's usual one)::

    data_root/img_dir/{train,val,test}/00000.png
    data_root/ann_dir/{train,val,test}/00000.png   # class index per pixel
    data_root/train_objects.json  # each training object's clean and noisy
                                  # class (Fashion-MNIST's 0..9), scene order
"""
import json
import os
import os.path as osp

import cv2
import numpy as np

from .noisy_labels import corrupt_labels
from .shapes_seg import draw_background, generate_once

__all__ = ['GARMENT_CLASSES', 'GARMENT_PALETTE', 'generate_garment_scenes',
           'read_fashion_mnist']

GARMENT_CLASSES = ('background', 'T-shirt/top', 'Trouser', 'Pullover',
                   'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                   'Ankle boot')
GARMENT_PALETTE = [[0, 0, 0]] + [
    [int(c) for c in np.random.RandomState(k).randint(40, 256, 3)]
    for k in range(1, 11)]
_INK = 40  # a garment pixel counts as the garment from this intensity on
_DIM = 0.4  # the background's brightness against the shapes set's


def read_fashion_mnist(fashion_root: str, split: str):
    """``(images uint8 (n, 28, 28), labels (n,))`` of ``'train'`` or
    ``'t10k'``, read by mmpretrain's own idx readers from the unpacked files
    its ``FashionMNIST`` reads."""
    from mmpretrain.datasets.mnist import read_image_file, read_label_file
    paths = [osp.join(fashion_root, f'{split}-{kind}-ubyte')
             for kind in ('images-idx3', 'labels-idx1')]
    for path in paths:
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{path} not found: run `bash tools/prepare_fashion_mnist.sh` '
                '(it puts Fashion-MNIST under data/fashion_mnist) or set '
                'generate.fashion_root.')
    return (read_image_file(paths[0]).numpy(),
            read_label_file(paths[1]).numpy().astype(np.int64))


def _paste(rng, img, label, garment, cls, size):
    side = int(rng.uniform(0.45, 0.65) * size)
    garment = cv2.resize(garment, (side, side),
                         interpolation=cv2.INTER_LINEAR).astype(np.float32)
    y, x = rng.randint(0, size - side + 1, size=2)
    alpha = garment[..., None] / 255.0
    colour = rng.randint(110, 256, size=3).astype(np.float32)
    window = img[y:y + side, x:x + side]
    window[:] = window * (1 - alpha) + colour * alpha
    label[y:y + side, x:x + side][garment >= _INK] = cls


def _write_split(root, split, num, size, images, classes, rng, per_scene):
    img_dir = osp.join(root, 'img_dir', split)
    ann_dir = osp.join(root, 'ann_dir', split)
    os.makedirs(img_dir)
    os.makedirs(ann_dir)
    cursor = 0
    for idx in range(num):
        img = _DIM * draw_background(rng, size)
        label = np.zeros((size, size), np.uint8)
        for k in range(per_scene[idx]):
            _paste(rng, img, label, images[cursor + k],
                   int(classes[cursor + k]) + 1, size)
        cursor += per_scene[idx]
        cv2.imwrite(osp.join(img_dir, f'{idx:05d}.png'),
                    np.clip(img, 0, 255).astype(np.uint8))
        cv2.imwrite(osp.join(ann_dir, f'{idx:05d}.png'), label)


def generate_garment_scenes(data_root: str,
                            fashion_root: str = 'data/fashion_mnist',
                            num_train: int = 500,
                            num_val: int = 500,
                            num_test: int = 500,
                            noise_rate: float = 0.4,
                            img_size: int = 64,
                            seed: int = 0) -> str:
    """Create the scenes under ``data_root`` unless they exist (see the
    module docstring). Returns ``data_root``."""
    spec = dict(kind='garment_scenes', num_train=num_train, num_val=num_val,
                num_test=num_test, noise_rate=noise_rate, img_size=img_size,
                seed=seed, version=2)

    def write(tmp):
        rng = np.random.RandomState(seed)
        train_imgs, train_cls = read_fashion_mnist(fashion_root, 'train')
        test_imgs, test_cls = read_fashion_mnist(fashion_root, 't10k')
        counts = {s: rng.randint(2, 4, size=n) for s, n in
                  (('train', num_train), ('val', num_val),
                   ('test', num_test))}
        order = rng.permutation(len(train_imgs))
        n_train, n_val = counts['train'].sum(), counts['val'].sum()
        pick = {'train': order[:n_train],
                'val': order[n_train:n_train + n_val],
                'test': rng.permutation(len(test_imgs))[:counts['test'].sum()]}
        clean = train_cls[pick['train']]
        noisy = corrupt_labels(clean, 10, noise_rate,
                               rng=np.random.default_rng(seed))
        with open(osp.join(tmp, 'train_objects.json'), 'w') as f:
            json.dump(dict(clean=clean.tolist(), noisy=noisy.tolist(),
                           per_scene=counts['train'].tolist()), f)
        sources = {'train': (train_imgs[pick['train']], noisy),
                   'val': (train_imgs[pick['val']], train_cls[pick['val']]),
                   'test': (test_imgs[pick['test']], test_cls[pick['test']])}
        for split, (images, classes) in sources.items():
            _write_split(tmp, split, len(counts[split]), img_size, images,
                         classes, rng, counts[split])

    return generate_once(data_root, spec, write)
