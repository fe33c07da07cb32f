"""Load mmengine checkpoints with torch's safe (weights-only) unpickler.

torch >= 2.6 loads with ``weights_only=True``: only tensors, plain
containers and allow-listed globals, no code from the file. mmengine 0.10
checkpoints also hold a few Python objects that unpickler does not know:

* ``mmengine.logging.HistoryBuffer`` (the message hub's scalars), whose
  state refers to its statistics methods, pickled (protocol 2) as
  ``getattr(HistoryBuffer, 'min')``;
* numpy arrays, scalars and dtypes (message-hub values, ``dataset_meta``).

:func:`load_from_local_weights_only` allows exactly those, for the duration of one
load (``torch.serialization.safe_globals``, not process-wide), and answers
``builtins.getattr`` with :func:`_restricted_getattr`, which resolves only
the listed attributes of the listed classes. Anything else (a pickle that
calls ``os.system``, an arbitrary class) is refused with
:class:`UntrustedCheckpointError`, which names what was refused and the
opt-in: ``ARSAM_MM_TRUST_CHECKPOINTS=1`` loads every local checkpoint with
``weights_only=False`` (arbitrary code; only for files you trust).

``install_safe_local_loader()`` registers the loader for local paths in
mmengine's ``CheckpointLoader``, which serves ``load_from``, ``--resume``
and ``mmengine.runner.load_checkpoint``. Remote schemes keep mmengine's
own loaders.
"""
import os
import os.path as osp
import pickle
from typing import Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

__all__ = [
    'TRUST_ENV', 'UntrustedCheckpointError', 'load_from_local_weights_only',
    'install_safe_local_loader', 'checkpoint_safe_globals'
]

#: Set to ``1`` to load local checkpoints with ``weights_only=False``.
TRUST_ENV = 'ARSAM_MM_TRUST_CHECKPOINTS'

# The only attributes ``getattr`` may fetch while unpickling: the default
# statistics of mmengine's HistoryBuffer (``_set_default_statistics``).
_ALLOWED_ATTRIBUTES = (
    (HistoryBuffer, frozenset({'min', 'max', 'mean', 'current'})),
)

# numpy dtypes a checkpoint may hold (BUILD needs the dtype's class).
_NUMPY_DTYPE_CODES = '?bhilqpBHILQPefdgFDGUS'


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds something outside the weights-only allow-list."""


def _restricted_getattr(owner, name: str):
    """``getattr`` for the unpickler: listed classes and names only."""
    for cls, names in _ALLOWED_ATTRIBUTES:
        if owner is cls and name in names:
            return getattr(cls, name)
    raise pickle.UnpicklingError(
        f'getattr({owner!r}, {name!r}) is not an allowed attribute')


def checkpoint_safe_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The globals an mmengine/arsam_mm checkpoint needs beyond torch's."""
    from numpy._core import multiarray
    allowed: List[Union[Callable, Tuple[Callable, str]]] = [
        HistoryBuffer, np.ndarray, np.dtype,
        (_restricted_getattr, 'builtins.getattr'),
    ]
    allowed += [type(np.dtype(code)) for code in _NUMPY_DTYPE_CODES]
    # numpy 1.x writes ``numpy.core``, numpy 2.x ``numpy._core``.
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed += [(multiarray._reconstruct, f'{module}._reconstruct'),
                    (multiarray.scalar, f'{module}.scalar')]
    return allowed


def _trusted() -> bool:
    return os.environ.get(TRUST_ENV, '').strip().lower() in ('1', 'true',
                                                             'yes')


def _refused_globals(filename: str) -> List[str]:
    """Globals in the file outside torch's and our allow-list."""
    allowed = set()
    for item in checkpoint_safe_globals():
        if isinstance(item, tuple):
            allowed.add(item[1])
        else:
            allowed.add(f'{item.__module__}.{item.__qualname__}')
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # legacy (non-zip) format: torch's message must do
        return []
    return [name for name in found if name not in allowed]


def _unpickler_reason(error: Exception) -> str:
    """The line of torch's weights-only error that says what failed."""
    prefix = 'WeightsUnpickler error:'
    for line in str(error).splitlines():
        if line.strip().startswith(prefix):
            return line.strip()[len(prefix):].strip()
    return str(error)


def load_from_local_weights_only(filename: str, map_location=None):
    """``torch.load`` a local mmengine checkpoint, weights-only.

    Raises:
        UntrustedCheckpointError: the file needs a global outside the
            allow-list (see the module docstring); nothing of it ran.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if _trusted():
        return torch.load(filename, map_location=map_location,
                          weights_only=False)
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(filename, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as error:
        refused = _refused_globals(filename) or [_unpickler_reason(error)]
        what = ', '.join(refused)
        raise UntrustedCheckpointError(
            f'arsam_mm refused to load {filename}: it needs {what}, which '
            'is none of what mmengine and arsam_mm checkpoints hold '
            '(tensors, containers, HistoryBuffer, numpy arrays and '
            'scalars), and unpickling it could run code from the file. '
            f'If you trust this file, set the environment variable '
            f'{TRUST_ENV}=1 to load local checkpoints without this check.'
        ) from error


def install_safe_local_loader() -> None:
    """Serve mmengine's local-path checkpoint loads with
    :func:`load_from_local_weights_only` (``load_from``, ``--resume``)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_weights_only, force=True)
