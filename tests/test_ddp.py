"""Two-process DDP on CPU (gloo): ARSAM keeps the ranks identical."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

# Two gloo processes per test (mp.spawn).
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, world_size, port, root, out_dir, runs):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    import torch.distributed as dist
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    from conftest import build_segmentor, make_runner
    # One process group, one fresh Runner (and model) per run.
    for index, (wrapper_cfg, iters, custom_hooks) in enumerate(runs):
        work_dir = os.path.join(out_dir, f'run{index}')
        runner = make_runner(
            work_dir, build_segmentor(seed=rank), root, wrapper_cfg, iters,
            launcher='pytorch', experiment_name=f'ddp{index}',
            custom_hooks=list(custom_hooks),
            cfg=dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                                            device_ids=None)))
        runner.train()
        wrapper = runner.optim_wrapper
        # Parameters only: BN running stats are per-rank (DDP broadcasts
        # rank 0's buffers before each forward, as with any optimizer).
        policy = wrapper.policy
        torch.save(dict(state=dict(runner.model.module.named_parameters()),
                        sam_iters=wrapper.sam_iters,
                        window_target=getattr(policy, 'window_target', None),
                        scaled_psf=getattr(getattr(policy, 'reuse', None),
                                           'scaled_psf', None)),
                   os.path.join(work_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


def _run_all(tmp_path, root, runs):
    """Train each ``(wrapper_cfg, iters, custom_hooks)`` of ``runs`` on two
    gloo ranks (one spawn for all); per run, both ranks' results."""
    mp.spawn(_worker, args=(2, _free_port(), root, str(tmp_path), runs),
             nprocs=2, join=True)
    return [[torch.load(tmp_path / f'run{i}' / f'rank{r}.pth',
                        weights_only=False) for r in range(2)]
            for i in range(len(runs))]


def _run(tmp_path, root, wrapper_cfg, iters, custom_hooks=()):
    return _run_all(tmp_path, root, [(wrapper_cfg, iters, custom_hooks)])[0]


def _assert_identical(rank0, rank1):
    assert rank0['sam_iters'] == rank1['sam_iters']
    for key, value in rank0['state'].items():
        assert torch.equal(value, rank1['state'][key]), key


def test_arsam_ranks_stay_identical(tmp_path, shapes_root):
    wrapper_cfg = dict(type='ARSAMOptimWrapper', rho=0.05, window=3,
                       warmup_iters=2, max_reuse=6, budget=0.5,
                       optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
    rank0, rank1 = _run(tmp_path, shapes_root, wrapper_cfg, 10)
    assert rank0['scaled_psf'] is not None
    for a, b in zip(rank0['scaled_psf'], rank1['scaled_psf']):
        assert torch.equal(a, b)
    # Both SAM and reuse iterations happened, with the same decisions.
    assert 2 < rank0['sam_iters'] < 10
    assert rank0['window_target'] == rank1['window_target']
    _assert_identical(rank0, rank1)


_PEERS = [
    dict(type='LookSAMOptimWrapper', k=3),
    # AE-SAM decides after an all-reduced pass; its zero-started EMAs take
    # SAM at first, a high early threshold (lambda2) brings ERM steps in.
    dict(type='AESAMOptimWrapper', lambda2=3.0),
    dict(type='LatePhaseSAMOptimWrapper', share=0.5),  # SAM from iter 4
]


def _each_keeps_ranks_identical(tmp_path, root, wrappers, iters, min_sam,
                                **options):
    """Train each wrapper (SGD base, rho 0.05, ``options``) for ``iters``
    iterations on two ranks, one after another in one spawned pair: the
    ranks end identical and took ``min_sam`` to ``iters - 1`` SAM steps."""
    runs = [(dict(wrapper, rho=0.05, **options,
                  optimizer=dict(type='SGD', lr=0.05, momentum=0.9)), iters,
             ()) for wrapper in wrappers]
    for wrapper, (rank0, rank1) in zip(wrappers,
                                       _run_all(tmp_path, root, runs)):
        assert min_sam <= rank0['sam_iters'] < iters, wrapper['type']
        _assert_identical(rank0, rank1)


def test_peer_ranks_stay_identical(tmp_path, shapes_root):
    _each_keeps_ranks_identical(tmp_path, shapes_root, _PEERS, 7, 1)


def test_second_pass_share_keeps_ranks_identical(tmp_path, shapes_root):
    # Each rank cuts its own batch (4 images) to 2 for the second pass, by
    # its own draw; the cut passes all-reduce like whole ones and the ranks
    # stay identical, for SAM and for ARSAM's SAM steps.
    base = dict(rho=0.05, second_pass_share=0.5,
                optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
    runs = [(dict(base, type='SAMOptimWrapper'), 6, ()),
            (dict(base, type='ARSAMOptimWrapper', window=2, warmup_iters=1,
                  budget=0.5), 6, ())]
    (sam0, sam1), (arsam0, arsam1) = _run_all(tmp_path, shapes_root, runs)
    assert sam0['sam_iters'] == 6 and 2 <= arsam0['sam_iters'] < 6
    _assert_identical(sam0, sam1)
    _assert_identical(arsam0, arsam1)


def test_accumulation_keeps_ranks_identical(tmp_path, shapes_root):
    # Two micro-batches per step: the first runs without all-reduce, the
    # second pass's micro-batches likewise but the last. ARSAM, and AE-SAM
    # (which decides after pass 1).
    wrappers = [dict(type='ARSAMOptimWrapper', window=2, warmup_iters=1),
                dict(type='AESAMOptimWrapper', lambda2=3.0)]
    _each_keeps_ranks_identical(tmp_path, shapes_root, wrappers, 10, 2,
                                accumulative_counts=2)


def test_quantized_arsam_ranks_stay_identical(tmp_path, shapes_root):
    wrapper_cfg = dict(type='ARSAMOptimWrapper', rho=0.05, window=3,
                       warmup_iters=2,
                       optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
    rank0, rank1 = _run(tmp_path, shapes_root, wrapper_cfg, 8,
                        [dict(type='FakeQuantHook', w_bits=4, a_bits=4)])
    steps = [k for k in rank0['state'] if k.endswith('_step')]
    assert steps  # the step sizes are parameters, compared below
    for key, value in rank0['state'].items():
        assert torch.equal(value, rank1['state'][key]), key
