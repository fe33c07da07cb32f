"""Make the pinned OpenMMLab stack usable on the machines we support.

Two gaps, both documented in docs/install.md:

* ``mmcv-lite`` ships no compiled ``mmcv._ext``, yet mmseg and mmpose import
  ``mmcv.ops`` at module level. When the real extension is missing we
  register a stand-in module whose functions raise ``NotImplementedError``
  *when called*, so every model family that does not run a compiled op
  (FCN, PSPNet, DeepLabV3(+), SegFormer, top-down heatmap pose, ...) imports
  and trains. With full ``mmcv`` installed nothing is replaced.
* torch >= 2.6 loads checkpoints with ``weights_only=True``; mmengine 0.10
  stores Python objects (``HistoryBuffer``, numpy scalars) in its
  checkpoints, so ``--resume`` fails. We re-register mmengine's loader for
  local files with one that stays weights-only and allows exactly those
  objects (``arsam_mm/checkpoint.py``); everything else is refused.
"""
import importlib.machinery
import importlib.util
import os
import sys
import types

from .checkpoint import install_safe_local_loader

__all__ = ['install_mmcv_ext_stand_in']


class _MissingOp:

    def __init__(self, name: str):
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(
            f'mmcv op `{self.__name__}` needs the compiled mmcv._ext, which '
            'mmcv-lite does not ship. Install full mmcv==2.1.0 (e.g. '
            '`mim install mmcv==2.1.0` on a GPU machine) to use this model.')


class _MmcvExtStandIn(types.ModuleType):

    def __getattr__(self, name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        return _MissingOp(name)


def install_mmcv_ext_stand_in() -> bool:
    """Register the ``mmcv._ext`` stand-in if mmcv has no compiled ops.

    Returns:
        bool: True if the stand-in was installed.
    """
    if 'mmcv._ext' in sys.modules:
        return False
    try:
        has_ext = importlib.util.find_spec('mmcv._ext') is not None
    except ModuleNotFoundError:  # mmcv itself is absent
        return False
    if has_ext:
        return False
    stand_in = _MmcvExtStandIn('mmcv._ext')
    # A spec without a loader: importable, yet mmengine's
    # ``mmcv_full_available()`` still (rightly) answers False.
    stand_in.__spec__ = importlib.machinery.ModuleSpec('mmcv._ext', None)
    sys.modules['mmcv._ext'] = stand_in
    return True


install_mmcv_ext_stand_in()
install_safe_local_loader()
# albumentations (RTMPose pipelines) asks PyPI for a newer version when it
# is imported; a training job should make no such call (and GPU nodes are
# often offline). A user's own setting wins.
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')
