"""The loss scale of ``torch.amp.GradScaler``, where the gradients carry it."""
from typing import Optional

from torch import Tensor

__all__ = ['grad_scale_of']


def grad_scale_of(loss_scaler) -> Optional[Tensor]:
    """The loss scale the gradients carry, as a tensor on their device,
    without a host sync (None: the scaler is disabled). ``GradScaler._scale``
    is private: torch has no public device-side accessor (``get_scale()``
    reads it back); ``tests/test_private_apis.py`` fails if torch renames
    it. It exists once ``scale()`` has run (the first pass's backward)."""
    if not loss_scaler.is_enabled():
        return None
    return loss_scaler._scale
