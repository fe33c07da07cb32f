"""A generated top-down keypoint set in COCO format: stick figures with the
17 COCO keypoints, boxes and visibility.

Each image holds one articulated figure (random pose, size and place) on a
textured background. Limbs of the figure's left side are drawn in warm
colours and of its right side in cool ones, so left and right can be told
apart as in real images. Written as COCO json plus images, so mmpose's own
``CocoDataset`` and ``CocoMetric`` (xtcocotools) read and score it::

    data_root/annotations/person_keypoints_{train,val[,test]}.json
    data_root/{train,val[,test]}/00000.png
    data_root/train_figures.json   # with noise: which figures are noisy

Annotation noise (the pose family's setting) touches the training split only;
val and test stay clean. ``noise_rate`` of the training figures (exactly
``round(noise_rate * num_train)``, drawn at random) get wrong keypoints:

* ``'jitter'``: every keypoint moved by an offset drawn uniformly in
  ``[-jitter, jitter] * figure height`` per axis (kept inside the image),
  a careless annotator's clicks;
* ``'swap'``: the left and right keypoints exchanged, the commonest error
  in real pose annotations.

Boxes come from the true keypoints, as a detector would give them.
"""
import json
import os
import os.path as osp

import cv2
import numpy as np

from .shapes_seg import draw_background, generate_once

__all__ = ['COCO_KEYPOINTS', 'generate_stick_figures']

COCO_KEYPOINTS = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear',
                  'left_shoulder', 'right_shoulder', 'left_elbow',
                  'right_elbow', 'left_wrist', 'right_wrist', 'left_hip',
                  'right_hip', 'left_knee', 'right_knee', 'left_ankle',
                  'right_ankle')
# COCO's skeleton, 1-based as in the official annotation files.
_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12],
             [7, 13], [6, 7], [6, 8], [7, 9], [8, 10], [9, 11], [2, 3],
             [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
_LEFT, _RIGHT, _CENTRE = (0, 80, 255), (255, 160, 0), (255, 255, 255)


def _rot(angle):
    return np.array([np.sin(angle), np.cos(angle)])  # 0 rad = straight down


def _figure(rng, centre, height):
    """Keypoints (17, 2) of a random pose whose body is ``height`` tall."""
    unit = height / 7.0
    lean = rng.uniform(-0.25, 0.25)
    pelvis = np.asarray(centre, np.float64) + np.array([0, 0.5 * unit])
    neck = pelvis - 2.6 * unit * _rot(lean)
    side = np.array([np.cos(lean), -np.sin(lean)])
    kp = np.zeros((17, 2))
    kp[5], kp[6] = neck + 0.9 * unit * side, neck - 0.9 * unit * side
    kp[11], kp[12] = pelvis + 0.6 * unit * side, pelvis - 0.6 * unit * side
    head = neck - 0.9 * unit * _rot(lean)
    kp[0] = head + 0.1 * unit * _rot(lean)
    kp[1], kp[2] = head + 0.25 * unit * side, head - 0.25 * unit * side
    kp[3], kp[4] = head + 0.5 * unit * side, head - 0.5 * unit * side
    for sign, (sh, el, wr) in ((1, (5, 7, 9)), (-1, (6, 8, 10))):
        upper = sign * rng.uniform(-0.3, 2.6)
        kp[el] = kp[sh] + 1.3 * unit * _rot(upper)
        kp[wr] = kp[el] + 1.2 * unit * _rot(upper + sign * rng.uniform(0, 2))
    for sign, (hip, knee, ankle) in ((1, (11, 13, 15)), (-1, (12, 14, 16))):
        thigh = sign * rng.uniform(-0.2, 0.7)
        kp[knee] = kp[hip] + 1.7 * unit * _rot(thigh)
        kp[ankle] = kp[knee] + 1.6 * unit * _rot(thigh - sign *
                                                 rng.uniform(0, 0.8))
    return kp


def _draw(img, kp, height):
    width = max(2, int(round(height / 28)))
    for a, b in _SKELETON:
        a, b = a - 1, b - 1
        names = COCO_KEYPOINTS[a] + COCO_KEYPOINTS[b]
        colour = (_LEFT if 'left' in names and 'right' not in names else
                  _RIGHT if 'right' in names and 'left' not in names else
                  _CENTRE)
        cv2.line(img, tuple(int(v) for v in kp[a]),
                 tuple(int(v) for v in kp[b]), colour, width, cv2.LINE_AA)
    centre = (kp[1] + kp[2]) / 2
    cv2.circle(img, tuple(int(v) for v in centre), int(height / 14),
               _CENTRE, width, cv2.LINE_AA)


# Index of each keypoint's mirror partner (nose and centre stay).
FLIP_INDICES = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
NOISE_TYPES = ('jitter', 'swap')


def _corrupt(kp, height, noise_type, jitter, img_size, rng):
    if noise_type == 'swap':
        return kp[list(FLIP_INDICES)]
    offset = rng.uniform(-jitter, jitter, size=kp.shape) * height
    return np.clip(kp + offset, 0, img_size - 1)


def _write_split(tmp, split, num, img_size, rng, first_id, noisy=(),
                 noise_type='jitter', jitter=0.0, noise_rng=None):
    os.makedirs(osp.join(tmp, split))
    images, annotations = [], []
    for idx in range(num):
        height = rng.uniform(0.55, 0.8) * img_size
        while True:
            centre = rng.uniform(0.3, 0.7, size=2) * img_size
            kp = _figure(rng, centre, height)
            if (kp.min() >= 2) and (kp.max() <= img_size - 3):
                break
        img = np.clip(draw_background(rng, img_size), 0, 255).astype(np.uint8)
        img = np.ascontiguousarray(img)
        _draw(img, kp, height)
        name = f'{idx:05d}.png'
        cv2.imwrite(osp.join(tmp, split, name), img)
        x0, y0 = kp.min(0) - 0.06 * height
        x1, y1 = kp.max(0) + 0.06 * height
        x0, y0 = max(0.0, x0), max(0.0, y0)
        x1, y1 = min(img_size - 1.0, x1), min(img_size - 1.0, y1)
        image_id = first_id + idx
        images.append(dict(id=image_id, file_name=name, width=img_size,
                           height=img_size))
        if idx in noisy:
            kp = _corrupt(kp, height, noise_type, jitter, img_size,
                          noise_rng)
        keypoints = np.concatenate([kp, np.full((17, 1), 2.0)], 1)
        annotations.append(dict(
            id=image_id, image_id=image_id, category_id=1, iscrowd=0,
            bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
            area=float((x1 - x0) * (y1 - y0)), num_keypoints=17,
            keypoints=[round(float(v), 2) for v in keypoints.ravel()]))
    coco = dict(
        images=images, annotations=annotations,
        categories=[dict(id=1, name='person', supercategory='person',
                         keypoints=list(COCO_KEYPOINTS), skeleton=_SKELETON)])
    with open(osp.join(tmp, 'annotations',
                       f'person_keypoints_{split}.json'), 'w') as f:
        json.dump(coco, f)


def generate_stick_figures(data_root: str,
                           num_train: int = 400,
                           num_val: int = 100,
                           img_size: int = 128,
                           seed: int = 0,
                           num_test: int = 0,
                           noise_rate: float = 0.0,
                           noise_type: str = 'jitter',
                           jitter: float = 0.1) -> str:
    """Create the keypoint set under ``data_root`` unless it exists.

    ``num_test`` > 0 adds a clean test split; ``noise_rate``,
    ``noise_type`` and ``jitter`` corrupt the training annotations (see
    the module docstring). Without them the files are the same as before
    these options existed.
    """
    if not 0.0 <= noise_rate < 1.0:
        raise ValueError(f'generate.noise_rate must be in [0, 1), got '
                         f'{noise_rate}')
    if noise_type not in NOISE_TYPES:
        raise ValueError(f'generate.noise_type must be one of {NOISE_TYPES},'
                         f' got {noise_type!r}')
    if noise_type == 'jitter' and noise_rate > 0 and not jitter > 0:
        raise ValueError(f'generate.jitter must be > 0 with '
                         f"noise_type='jitter', got {jitter}")
    spec = dict(kind='stick_figures', num_train=num_train, num_val=num_val,
                img_size=img_size, seed=seed, version=1)
    if num_test:
        spec.update(num_test=num_test)
    if noise_rate:
        spec.update(noise_rate=noise_rate, noise_type=noise_type)
        if noise_type == 'jitter':
            spec.update(jitter=jitter)

    def write(tmp):
        rng = np.random.RandomState(seed)
        os.makedirs(osp.join(tmp, 'annotations'))
        noisy = []
        if noise_rate:
            noise_rng = np.random.RandomState(seed + 1)
            noisy = sorted(noise_rng.permutation(num_train)[:int(
                round(noise_rate * num_train))].tolist())
            with open(osp.join(tmp, 'train_figures.json'), 'w') as f:
                json.dump(dict(noisy=noisy, noise_type=noise_type), f)
        _write_split(tmp, 'train', num_train, img_size, rng, 1, set(noisy),
                     noise_type, jitter, np.random.RandomState(seed + 2))
        _write_split(tmp, 'val', num_val, img_size, rng, 100000)
        if num_test:
            _write_split(tmp, 'test', num_test, img_size, rng, 200000)

    return generate_once(data_root, spec, write)
