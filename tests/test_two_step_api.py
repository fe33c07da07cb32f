"""The plain optimizers' two-step API: a loop that runs its own backward
(a ``torch.amp.GradScaler``, HF Accelerate's ``accelerator.backward``)
trains every policy as ``step(closure)`` does, on the same batches."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from arsam import ARSAM, ASAM, SAM, LatePhaseSAM, LookSAM
from arsam.policies import AESAMPolicy

STEPS = 8


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Linear(16, 3))


def _batches(n=STEPS, micro=1, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [[(torch.randn(16, 8, generator=generator),
              torch.randint(0, 3, (16, ), generator=generator))
             for _ in range(micro)] for _ in range(n)]


def _loss(model, inputs, targets):
    return nn.functional.cross_entropy(model(inputs), targets)


def _build(method, model):
    base = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    if method is AESAMPolicy:
        return SAM(model, base, policy=AESAMPolicy())
    kwargs = dict(max_steps=STEPS) if method in (ARSAM, LatePhaseSAM) else {}
    if method is ARSAM:
        kwargs.update(budget=0.5, warmup_iters=2, window=2)
    if method is LookSAM:
        kwargs.update(k=3)
    return method(model, base, **kwargs)


def _closure_run(method, batches):
    model = _model()
    optimizer = _build(method, model)
    for micro_batches in batches:
        def closure():
            total = 0
            for inputs, targets in micro_batches:
                loss = _loss(model, inputs, targets) / len(micro_batches)
                loss.backward()
                total = total + loss.detach()
            return total
        optimizer.step(closure)
        optimizer.zero_grad()
    return model, optimizer


def _backward(loss, scaler):
    (loss if scaler is None else scaler.scale(loss)).backward()


def _two_step_run(method, batches, scaler=None):
    """The loop of the README's two-step example (accumulation: every
    micro-batch inside each ``with`` block)."""
    model = _model()
    optimizer = _build(method, model)
    for micro_batches in batches:
        with optimizer.first_pass():
            for inputs, targets in micro_batches:
                _backward(_loss(model, inputs, targets) / len(micro_batches),
                          scaler)
        if optimizer.takes_second_pass(scaler):
            with optimizer.second_pass():
                for inputs, targets in micro_batches:
                    _backward(_loss(model, inputs, targets)
                              / len(micro_batches), scaler)
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()
        optimizer.zero_grad()
    return model, optimizer


def _assert_same(a, b, atol=1e-6):
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, atol=atol, rtol=0, msg=name)


METHODS = [SAM, ASAM, ARSAM, LookSAM, LatePhaseSAM, AESAMPolicy]


@pytest.mark.parametrize('micro', [1, 2], ids=['batch', 'accumulation'])
@pytest.mark.parametrize('method', METHODS, ids=lambda m: m.__name__)
def test_two_step_loop_equals_step_closure(method, micro):
    batches = _batches(micro=micro)
    expected, closure_opt = _closure_run(method, batches)
    got, optimizer = _two_step_run(method, batches)
    _assert_same(expected, got)
    assert optimizer.engine.sam_iters == closure_opt.engine.sam_iters
    assert 0 < optimizer.engine.sam_iters <= STEPS
    # A float32 GradScaler scales by powers of two: the same step again.
    scaler = torch.amp.GradScaler('cpu', init_scale=2.0**12)
    scaled, scaled_opt = _two_step_run(method, batches, scaler)
    _assert_same(expected, scaled)
    assert scaled_opt.engine.sam_iters == closure_opt.engine.sam_iters


class _Spiky(nn.Module):
    """A model whose output is inf while ``spike`` is set."""

    def __init__(self):
        super().__init__()
        self.net = _model()
        self.spike = False

    def forward(self, x):
        out = self.net(x)
        return out * float('inf') if self.spike else out


def test_a_grad_scaler_fp16_loop_trains_and_skips_an_overflow():
    """fp16 autocast with a GradScaler: ARSAM trains; a SAM step whose
    second pass overflows stores nothing (the stored PSF is the one before
    it), the scaler skips the step and backs off."""
    torch.manual_seed(0)
    model = _Spiky()
    optimizer = ARSAM(model, torch.optim.SGD(model.parameters(), lr=0.1,
                                             momentum=0.9),
                      max_steps=40, budget=0.5, window=2, warmup_iters=2)
    scaler = torch.amp.GradScaler('cpu', init_scale=2.0**10)
    batches = [batch for (batch, ) in _batches(40, seed=3)]
    losses, spiked = [], None
    for step, (inputs, targets) in enumerate(batches):
        with optimizer.first_pass():
            with torch.autocast('cpu', dtype=torch.float16):
                loss = _loss(model, inputs, targets)
            scaler.scale(loss).backward()
        losses.append(float(loss))
        if optimizer.takes_second_pass(scaler):
            # The first SAM step from step 20 on overflows at w + e.
            model.spike = step >= 20 and spiked is None
            if model.spike:
                spiked = step
                before = [t.clone() for t in optimizer.policy.stored_psf()]
                weights = [p.detach().clone() for p in model.parameters()]
            with optimizer.second_pass():
                with torch.autocast('cpu', dtype=torch.float16):
                    scaler.scale(_loss(model, inputs, targets)).backward()
            model.spike = False
        scale = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        if step == spiked:  # skipped: weights, PSF as before; scale halved
            for p, w in zip(model.parameters(), weights):
                assert torch.equal(p, w)
            for got, want in zip(optimizer.policy.stored_psf(), before):
                assert torch.equal(got, want)
            assert scaler.get_scale() == scale / 2
    assert spiked is not None
    assert sum(losses[-5:]) < sum(losses[:5])
    assert optimizer.engine.total_iters == 40  # the skipped step counts
    assert optimizer.sam_rate == pytest.approx(0.5)


def test_hf_accelerate_loop_equals_step_closure(monkeypatch):
    """A loop of a third-party trainer: HF Accelerate prepares the model,
    the optimizer (its AcceleratedOptimizer calls ``step()`` without a
    closure) and the data, and runs the backward."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # One process: launcher variables left by an in-process tools/train.py
    # run (it sets LOCAL_RANK, as mmengine's tools do) would make
    # Accelerate start a multi-CPU process group.
    for name in ('LOCAL_RANK', 'RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE'):
        monkeypatch.delenv(name, raising=False)
    AcceleratorState._reset_state(True)
    batches = _batches()
    expected, _ = _closure_run(ARSAM, batches)
    accelerator = Accelerator(cpu=True)
    model = _model()
    optimizer = _build(ARSAM, model)
    model, prepared = accelerator.prepare(model, optimizer)
    for ((inputs, targets), ) in batches:
        with optimizer.first_pass():
            accelerator.backward(_loss(model, inputs, targets))
        if optimizer.takes_second_pass(accelerator.scaler):
            with optimizer.second_pass():
                accelerator.backward(_loss(model, inputs, targets))
        prepared.step()
        prepared.zero_grad()
    AcceleratorState._reset_state(True)  # nothing left for later tests
    _assert_same(expected, accelerator.unwrap_model(model))
    assert optimizer.engine.sam_iters == 4  # budget 0.5 of 8


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_worker(rank, port, out, method_name):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    torch.set_num_threads(1)
    method = dict(ARSAM=ARSAM, AESAM=AESAMPolicy)[method_name]
    # Each rank its own half of every batch.
    batches = [[(x[rank::2], y[rank::2]) for x, y in micro]
               for micro in _batches()]
    results, local = [], []
    for runner in (_closure_run, _two_step_run):
        model = nn.parallel.DistributedDataParallel(_model())
        optimizer = _build(method, model)
        for micro in batches:
            if runner is _closure_run:
                def closure():
                    loss = _loss(model, *micro[0])
                    loss.backward()
                    return loss
                optimizer.step(closure)
            else:
                with optimizer.first_pass() as plan:
                    _loss(model, *micro[0]).backward()
                local.append(plan.local)
                if optimizer.takes_second_pass():
                    with optimizer.second_pass():
                        _loss(model, *micro[0]).backward()
                optimizer.step()
            optimizer.zero_grad()
        results.append(([p.detach().clone() for p in model.parameters()],
                        optimizer.engine.sam_iters))
    torch.save((results, any(local)), f'{out}/rank{rank}.pt')
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize('method', ['ARSAM', 'AESAM'])
def test_two_step_loop_under_ddp(tmp_path, method):
    """Two gloo ranks: ARSAM's first pass of a SAM step is local (its kept
    g averaged over ranks), AE-SAM's is all-reduced; the ranks stay
    identical and the two-step loop equals step(closure)."""
    mp.spawn(_ddp_worker, args=(_free_port(), str(tmp_path), method),
             nprocs=2, join=True)
    (rank0, local), (rank1, _) = (torch.load(tmp_path / f'rank{r}.pt')
                                  for r in (0, 1))
    assert local == (method == 'ARSAM')
    for (weights0, sam0), (weights1, sam1) in zip(rank0, rank1):
        assert sam0 == sam1 and sam0 > 0
        for a, b in zip(weights0, weights1):
            assert torch.equal(a, b)
    (closure_weights, closure_sam), (two_step_weights, two_step_sam) = rank0
    assert closure_sam == two_step_sam
    for a, b in zip(closure_weights, two_step_weights):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
