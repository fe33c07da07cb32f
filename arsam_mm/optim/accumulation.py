"""One SAM-family step over mmengine's gradient accumulation.

With ``accumulative_counts = N`` a cycle of N micro-batches is one
optimizer step, so it is also one SAM-family decision: the policy decides
at the cycle's first micro-batch (DDP must know then which micro-batches
skip the all-reduce), every micro-batch's first pass accumulates as usual,
and a two-pass cycle keeps its preprocessed micro-batches for the second
pass at ``w + e``, divided by mmengine's own divisor. ``N = 1`` is the
common case: a cycle of one batch.
"""
import logging
from typing import List, Optional

from mmengine.logging import print_log
from torch import Tensor

__all__ = ['AccumulationCycle']


class AccumulationCycle:
    """The state of the accumulation cycle in progress.

    Attributes:
        two_pass (bool): the cycle's decision (whether it may take two
            passes). Meaningful while :attr:`is_open`.
        batches (list): the micro-batches recorded for the second pass.
        loss (Tensor): the sum of the micro-batches' (divided) losses.
        micro (int): micro-batches seen in this cycle.
        divisor (int): mmengine's divisor of this micro-batch's loss (N, or
            the length of the last, shorter cycle).
    """

    def __init__(self):
        self.is_open = False
        self.two_pass = False
        self.end()

    def open(self, two_pass: bool) -> None:
        self.is_open = True
        self.two_pass = two_pass

    def record_batch(self, batch) -> None:
        self.batches.append(batch)

    def add_loss(self, loss: Tensor) -> None:
        loss = loss.detach()
        self.loss = loss if self.loss is None else self.loss + loss
        self.micro += 1

    def end(self) -> None:
        self.is_open = False
        self.batches: List = []
        self.loss: Optional[Tensor] = None
        self.micro = 0
        self.divisor = 1

    def state_dict(self) -> Optional[dict]:
        """Saved in the middle of a cycle: the decision its remaining
        micro-batches keep after a resume (None between cycles)."""
        return dict(two_pass=self.two_pass) if self.is_open else None

    def load_state_dict(self, state: Optional[dict]) -> None:
        self.end()
        if state is not None:
            self.open(state['two_pass'])

    def warn_if_resumed_inside(self, owner: str, micro_batch: int) -> None:
        """At the first step after a resume (``micro_batch``: mmengine's
        micro-batch counter modulo N)."""
        if self.is_open and micro_batch:
            print_log(
                f'{owner}: resumed in the middle of an accumulation cycle. '
                'Its remaining micro-batches keep the decision taken at its '
                "start; the micro-batches before the checkpoint are lost "
                "(mmengine's rule), so its second pass runs over those "
                'after it only.',
                logger='current',
                level=logging.WARNING)
