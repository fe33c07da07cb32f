"""The run's length, from what mmengine publishes, under any runner.

mmengine's ``RuntimeInfoHook`` (a default hook of both ``Runner`` and
``FlexibleRunner``) publishes ``max_iters``, ``max_epochs`` and
``loop_stage`` in the message hub at ``before_train``, before the first
training step. The iterations per epoch (one pass over the train
dataloader) are published by :class:`~arsam_mm.hooks.SAMRunInfoHook`
under :data:`EPOCH_LENGTH_KEY`; without it they are known only for an
epoch-based loop of more than one epoch (``max_iters / max_epochs``):
mmengine's ``IterBasedTrainLoop`` reports ``max_epochs = 1`` whatever the
dataloader's length.
"""
from typing import Optional, Tuple

__all__ = ['EPOCH_LENGTH_KEY', 'training_run_length']

EPOCH_LENGTH_KEY = 'arsam_mm/epoch_length'


def training_run_length(
        message_hub,
        max_iters: Optional[int] = None
) -> Tuple[Optional[int], Optional[int]]:
    """``(max_iters, epoch_length)`` of the training run in progress, each
    None where nothing published it. ``max_iters``: what the caller was
    told (``initialize_count_status``), used outside a train loop only.
    Information left in the hub by a finished run (no ``loop_stage``) is
    not read."""
    if message_hub.get_info('loop_stage') != 'train':
        return max_iters, None
    max_iters = message_hub.get_info('max_iters', max_iters)
    epoch_length = message_hub.get_info(EPOCH_LENGTH_KEY)
    max_epochs = message_hub.get_info('max_epochs')
    if epoch_length is None and max_iters and max_epochs and max_epochs > 1:
        epoch_length = max_iters // max_epochs
    return max_iters, epoch_length
