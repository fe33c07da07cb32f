"""The wrappers behave the same under mmengine's Runner and FlexibleRunner
(which is no Runner subclass and calls ``initialize_count_status`` only
with gradient accumulation): same weights, same stream of decisions."""
import copy
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from conftest import build_segmentor, make_flexible_runner, make_runner

_SGD = dict(type='SGD', lr=0.05, momentum=0.9)


def _decisions(runner):
    """Per optimizer step: did it take two passes (from train/sam_rate)."""
    rates = runner.message_hub.get_scalar('train/sam_rate').data[0]
    counts = [round(rate * (i + 1)) for i, rate in enumerate(rates)]
    return [b - a for a, b in zip([0] + counts, counts)]


def _train_both(tmp_path, shapes_root, wrapper_cfg, iters, **kwargs):
    model = build_segmentor()
    results = []
    for make in (make_runner, make_flexible_runner):
        runner = make(tmp_path / make.__name__, copy.deepcopy(model),
                      shapes_root, copy.deepcopy(wrapper_cfg), iters,
                      **kwargs)
        runner.train()
        results.append(runner)
    return results


def _assert_same_training(runner, flexible):
    for (name, a), b in zip(runner.model.state_dict().items(),
                            flexible.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert _decisions(runner) == _decisions(flexible)
    assert runner.optim_wrapper.sam_iters == flexible.optim_wrapper.sam_iters


def test_sam_same_weights_under_both_runners(tmp_path, shapes_root):
    runner, flexible = _train_both(
        tmp_path, shapes_root,
        dict(type='SAMOptimWrapper', rho=0.05, optimizer=_SGD), 4)
    _assert_same_training(runner, flexible)
    assert flexible.optim_wrapper.sam_iters == 4


def test_arsam_warmup_epochs_ends_under_both_runners(tmp_path, shapes_root):
    # 24 images, batch 4: an epoch is 6 iterations of the 12.
    runner, flexible = _train_both(
        tmp_path, shapes_root,
        dict(type='ARSAMOptimWrapper', rho=0.05, warmup_epochs=1, window=3,
             budget=0.75, optimizer=_SGD), 12,
        custom_hooks=[dict(type='SAMRunInfoHook')])
    _assert_same_training(runner, flexible)
    decisions = _decisions(flexible)
    assert decisions[:6] == [1] * 6  # the warm-up: one epoch
    assert sum(decisions) == 9  # the budget: 0.75 of 12, not all 12


def test_arsam_budget_with_accumulation_under_both_runners(tmp_path,
                                                           shapes_root):
    runner, flexible = _train_both(
        tmp_path, shapes_root,
        dict(type='ARSAMOptimWrapper', rho=0.05, window=2, warmup_iters=1,
             budget=0.5, accumulative_counts=2, optimizer=_SGD), 12)
    _assert_same_training(runner, flexible)
    # 12 micro-batches, 6 steps, 3 of them two-pass: 6 micro-batches.
    assert flexible.optim_wrapper.sam_iters == 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_worker(rank, port, root, out_dir, wrapper_cfg, iters):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2')
    torch.set_num_threads(1)
    import torch.distributed as dist
    dist.init_process_group('gloo', rank=rank, world_size=2)
    ddp = dict(type='MMDistributedDataParallel', device_ids=None,
               broadcast_buffers=False)
    # The Runner, then the FlexibleRunner, in one process group.
    for flexible in (False, True):
        work_dir = os.path.join(out_dir, f'flexible{int(flexible)}')
        if flexible:
            runner = make_flexible_runner(
                work_dir, build_segmentor(), root, wrapper_cfg, iters,
                strategy=dict(type='DDPStrategy', model_wrapper=ddp),
                launcher='pytorch', experiment_name='flex_ddp')
        else:
            runner = make_runner(work_dir, build_segmentor(), root,
                                 wrapper_cfg, iters, launcher='pytorch',
                                 experiment_name='ddp',
                                 cfg=dict(model_wrapper_cfg=ddp))
        runner.train()
        if rank == 0:
            torch.save(
                dict(state=dict(runner.model.module.named_parameters()),
                     decisions=_decisions(runner)),
                os.path.join(out_dir, f'flexible{int(flexible)}.pth'))
    # Neither rank tears gloo down while the other still uses it (a rank
    # that left early once took its peer down with SIGABRT in CI).
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow  # two gloo processes
@pytest.mark.parametrize('wrapper_cfg', [
    dict(type='SAMOptimWrapper', rho=0.05, optimizer=_SGD),
    dict(type='ARSAMOptimWrapper', rho=0.05, window=2, warmup_iters=1,
         budget=0.5, optimizer=_SGD),
])
def test_ddp_strategy_matches_the_runner(tmp_path, shapes_root, wrapper_cfg):
    mp.spawn(_ddp_worker, args=(_free_port(), shapes_root, str(tmp_path),
                                wrapper_cfg, 6),
             nprocs=2, join=True)
    runner, flexible = (torch.load(tmp_path / f'flexible{i}.pth',
                                   weights_only=False) for i in (0, 1))
    assert runner['decisions'] == flexible['decisions']
    for name, value in runner['state'].items():
        assert torch.equal(value, flexible['state'][name]), name
