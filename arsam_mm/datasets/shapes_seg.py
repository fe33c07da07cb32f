"""A segmentation data set the package generates: coloured shapes on
textured backgrounds with per-pixel labels.

Used by the demo, the tests and smoke runs of every segmentation config, so
nothing has to be downloaded. Generation is deterministic (one seed), takes
a few seconds, and happens on first use; the files are then read by mmseg's
own ``BaseSegDataset`` machinery (pipelines, ``IoUMetric``) unchanged.

With ``noise_rate > 0`` the training split carries whole-object class
flips: exactly ``round(noise_rate * n)`` of its ``n`` shapes are labelled
with another shape class (:func:`~.noisy_labels.corrupt_labels`), the
pixels they draw are not changed; val and test stay clean. The images, and
with ``noise_rate=0`` the labels too, are the same as without the option.
With ``class_colours=True`` a shape's colour is its class's palette colour
plus a random shift (a cue a small network learns in a few hundred
iterations, where the shape alone takes thousands): the noisy variant then
asks a model to memorise flipped objects against an easy rule, the
setting where SAM's gain shows.

Layout (mmseg's usual one)::

    data_root/img_dir/{train,val[,test]}/00000.png
    data_root/ann_dir/{train,val[,test]}/00000.png   # class index per pixel
    data_root/train_objects.json  # with noise: each training shape's clean
                                  # and noisy class, in drawing order
"""
import json
import os
import os.path as osp
import shutil
import tempfile

import cv2
import numpy as np

from .noisy_labels import corrupt_labels

__all__ = [
    'SHAPE_CLASSES', 'SHAPE_PALETTE', 'generate_shapes_dataset',
    'generate_once', 'draw_background', 'draw_shape'
]

SHAPE_CLASSES = ('background', 'disc', 'box', 'triangle')
SHAPE_PALETTE = [[0, 0, 0], [220, 20, 60], [0, 128, 255], [255, 200, 0]]
_MARKER = 'arsam_generated.json'


def draw_background(rng: np.random.RandomState, size: int) -> np.ndarray:
    """Low-frequency colour noise plus random stripes."""
    coarse = rng.randint(40, 216, size=(4, 4, 3)).astype(np.float32)
    img = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    freq = rng.uniform(0.2, 0.6)
    stripes = np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)))
    img += 25.0 * stripes[..., None] * rng.uniform(-1, 1, size=3)
    img += rng.normal(0, 8, size=img.shape)
    return img


def draw_shape(rng, img, label, cls: int, size: int,
               radius_range=(0.10, 0.22), tint=None) -> None:
    """Draw one shape of class ``cls`` into ``img`` and ``label``. Its
    colour is random, or ``tint`` (in ``img``'s channel order) shifted by
    up to 40 per channel."""
    radius = int(rng.uniform(*radius_range) * size)
    cx, cy = rng.randint(radius, size - radius, size=2)
    colour = rng.randint(0, 256, size=3)
    if tint is not None:
        colour = np.clip(np.asarray(tint) + (colour * 80) // 256 - 40, 0, 255)
    colour = tuple(float(c) for c in colour)
    mask = np.zeros((size, size), np.uint8)
    if cls == 1:
        cv2.circle(mask, (int(cx), int(cy)), radius, 1, -1)
    elif cls == 2:
        angle = rng.uniform(0, 90)
        box = cv2.boxPoints(((float(cx), float(cy)),
                             (1.6 * radius, 1.6 * radius), angle))
        cv2.fillPoly(mask, [box.astype(np.int32)], 1)
    else:
        start = rng.uniform(0, 2 * np.pi)
        corners = [(cx + radius * np.cos(start + k * 2 * np.pi / 3),
                    cy + radius * np.sin(start + k * 2 * np.pi / 3))
                   for k in range(3)]
        cv2.fillPoly(mask, [np.array(corners, np.int32)], 1)
    img[mask == 1] = colour
    label[mask == 1] = cls


def _write_split(root: str, split: str, num: int, size: int,
                 rng: np.random.RandomState, noise_rate: float = 0.0,
                 noise_seed: int = 0, class_colours: bool = False) -> None:
    img_dir = osp.join(root, 'img_dir', split)
    ann_dir = osp.join(root, 'ann_dir', split)
    os.makedirs(img_dir)
    os.makedirs(ann_dir)
    scenes = []  # per scene: its shapes' masks and classes, drawing order
    for idx in range(num):
        img = draw_background(rng, size)
        shapes = []
        for _ in range(rng.randint(1, 4)):
            mask = np.zeros((size, size), np.uint8)
            cls = rng.randint(1, 4)
            draw_shape(rng, img, mask, cls, size,
                       tint=SHAPE_PALETTE[cls] if class_colours else None)
            shapes.append((mask > 0, cls))
        scenes.append(shapes)
        img = np.clip(img, 0, 255).astype(np.uint8)
        cv2.imwrite(osp.join(img_dir, f'{idx:05d}.png'), img)
    clean = np.array([cls for shapes in scenes for _, cls in shapes])
    classes = clean
    if noise_rate > 0:  # over shape classes 1..3, background untouched
        classes = corrupt_labels(clean - 1, len(SHAPE_CLASSES) - 1,
                                 noise_rate,
                                 rng=np.random.default_rng(noise_seed)) + 1
        with open(osp.join(root, f'{split}_objects.json'), 'w') as f:
            json.dump(dict(clean=clean.tolist(), noisy=classes.tolist(),
                           per_scene=[len(s) for s in scenes]), f)
    cursor = 0
    for idx, shapes in enumerate(scenes):
        label = np.zeros((size, size), np.uint8)
        for mask, _ in shapes:  # a later shape covers an earlier one
            label[mask] = classes[cursor]
            cursor += 1
        cv2.imwrite(osp.join(ann_dir, f'{idx:05d}.png'), label)


def generate_once(data_root: str, spec: dict, write) -> str:
    """Run ``write(tmp_dir)`` once for ``data_root`` described by ``spec``.

    The folder carries a marker with ``spec``; a folder made with another
    spec is an error rather than silently reused. Safe with several
    processes (DDP ranks) starting at once: each writes a private copy and
    the first atomic rename wins.
    """
    marker = osp.join(data_root, _MARKER)
    if osp.isfile(marker):
        with open(marker) as f:
            found = json.load(f)
        if found != spec:
            raise ValueError(
                f'{data_root} holds a generated set made with {found}, not '
                f'{spec}: pass another data_root or delete the folder.')
        return data_root
    parent = osp.dirname(osp.abspath(data_root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.arsam-data-', dir=parent)
    try:
        write(tmp)
        with open(osp.join(tmp, _MARKER), 'w') as f:
            json.dump(spec, f)
        try:
            os.rename(tmp, data_root)
        except OSError:
            if not osp.isfile(marker):  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return data_root


def generate_shapes_dataset(data_root: str,
                            num_train: int = 400,
                            num_val: int = 100,
                            img_size: int = 64,
                            seed: int = 0,
                            noise_rate: float = 0.0,
                            num_test: int = 0,
                            class_colours: bool = False) -> str:
    """Create the segmentation set under ``data_root`` unless it exists.

    Args:
        noise_rate: share of the training shapes whose class is flipped
            (module docstring); val and test stay clean.
        num_test: scenes in a clean ``test`` split, drawn after val.
        class_colours: each class's shapes are tinted with its palette
            colour (module docstring); otherwise any colour.

    Returns:
        str: ``data_root``.
    """
    spec = dict(kind='shapes_seg', num_train=num_train, num_val=num_val,
                img_size=img_size, seed=seed, version=1)
    # Keys only when set, so folders made before the options still match.
    spec.update({k: v for k, v in (('noise_rate', noise_rate),
                                   ('num_test', num_test),
                                   ('class_colours', class_colours)) if v})

    def write(tmp):
        rng = np.random.RandomState(seed)
        _write_split(tmp, 'train', num_train, img_size, rng, noise_rate,
                     seed, class_colours)
        _write_split(tmp, 'val', num_val, img_size, rng,
                     class_colours=class_colours)
        if num_test:
            _write_split(tmp, 'test', num_test, img_size, rng,
                         class_colours=class_colours)

    return generate_once(data_root, spec, write)
