"""A generated top-down keypoint set in COCO format: stick figures with the
17 COCO keypoints, boxes and visibility.

Each image holds one articulated figure (random pose, size and place) on a
textured background. Limbs of the figure's left side are drawn in warm
colours and of its right side in cool ones, so left and right can be told
apart as in real images. Written as COCO json plus images, so mmpose's own
``CocoDataset`` and ``CocoMetric`` (xtcocotools) read and score it::

    data_root/annotations/person_keypoints_{train,val}.json
    data_root/{train,val}/00000.png
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


def _write_split(tmp, split, num, img_size, rng, first_id):
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
                           seed: int = 0) -> str:
    """Create the keypoint set under ``data_root`` unless it exists."""
    spec = dict(kind='stick_figures', num_train=num_train, num_val=num_val,
                img_size=img_size, seed=seed, version=1)

    def write(tmp):
        rng = np.random.RandomState(seed)
        os.makedirs(osp.join(tmp, 'annotations'))
        _write_split(tmp, 'train', num_train, img_size, rng, 1)
        _write_split(tmp, 'val', num_val, img_size, rng, 100000)

    return generate_once(data_root, spec, write)
