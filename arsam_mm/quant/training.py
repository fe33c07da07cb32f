"""What training the LSQ step sizes needs beyond the swap: their own param
group (no weight decay, in every LR scheduler), and under DDP an average
of their gradients, since DDP was built before they existed."""
from typing import List, Sequence

import torch
from torch import Tensor
from torch.autograd import Variable

from arsam._dist import all_reduce_mean_, world_size

__all__ = ['steps_in_own_group', 'StepGradAverager']


def steps_in_own_group(optimizer, steps: List[Tensor],
                       schedulers: Sequence) -> bool:
    """Move ``steps`` into one param group without weight decay (out of the
    groups an optimizer built after quantization put them in) and give
    every LR scheduler its base value. Returns False when they are there
    already (a second run, or a resume)."""
    ids = {id(p) for p in steps}
    for group in optimizer.param_groups:
        if group['params'] and all(id(p) in ids for p in group['params']):
            return False
    for group in optimizer.param_groups:
        group['params'] = [p for p in group['params'] if id(p) not in ids]
    optimizer.add_param_group(dict(params=steps, weight_decay=0.0))
    group = optimizer.param_groups[-1]
    for scheduler in schedulers:
        key = scheduler.param_name
        group.setdefault(f'initial_{key}', group[key])
        scheduler.base_values.append(group[f'initial_{key}'])
    return True


class StepGradAverager:
    """Average the step sizes' gradients over ranks in one flattened
    all-reduce per backward: the first step-size gradient of a backward
    queues it to run when the backward ends, as DDP's reducer does
    (``Variable._execution_engine.queue_callback``, a torch internal
    pinned by tests/test_private_apis.py). Nothing on one rank."""

    def __init__(self, steps: List[Tensor]):
        self.steps = steps
        self._queued = False
        if world_size() == 1:
            return
        for step in steps:
            step.register_post_accumulate_grad_hook(self._queue)

    def _queue(self, param) -> None:
        if not self._queued:
            self._queued = True
            Variable._execution_engine.queue_callback(self._average)

    def _average(self) -> None:
        self._queued = False
        trained = [step for step in self.steps if step.requires_grad]
        for step in trained:  # every rank reduces the same layout
            if step.grad is None:
                step.grad = torch.zeros_like(step)
        all_reduce_mean_([step.grad for step in trained])
