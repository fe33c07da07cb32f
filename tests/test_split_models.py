"""A model split across devices: norms and the foreach steps with a
norm-derived scalar are taken per (device, dtype) group
(``sam_math.device_dtype_groups``). Without GPUs the groups come from two
dtypes: the grouped path must compute what the one-group path does."""
import pytest
import torch
from torch import nn

import arsam.sam_math as sam_math
from arsam import ARSAM, LookSAM
from arsam.sam_math import foreach_scalar, tensor_norms


def _mixed():
    return [torch.randn(3), torch.randn(4, dtype=torch.float64),
            torch.randn(2, 2)]


def test_norms_and_scalar_products_per_group():
    torch.manual_seed(0)
    tensors = _mixed()
    assert len(sam_math.device_dtype_groups(tensors)) == 2
    norms = tensor_norms(tensors)
    want = torch.stack([t.double().norm() for t in tensors])
    torch.testing.assert_close(norms.double(), want)
    factor = torch.tensor(0.5)
    for got, t in zip(foreach_scalar(torch._foreach_mul, tensors, factor),
                      tensors):
        assert got.dtype == t.dtype
        torch.testing.assert_close(got, t * 0.5)


class _TwoDtypes(nn.Module):
    """A float32 stage and a float64 stage, as a model whose stages sit on
    two devices."""

    def __init__(self):
        super().__init__()
        self.first = nn.Sequential(nn.Linear(6, 12), nn.ReLU())
        self.second = nn.Linear(12, 3).double()

    def forward(self, x):
        return self.second(self.first(x).double()).float()


def _train(method, **kwargs):
    torch.manual_seed(0)
    model = _TwoDtypes()
    optimizer = method(model, torch.optim.SGD(model.parameters(), lr=0.1,
                                              momentum=0.9), **kwargs)
    generator = torch.Generator().manual_seed(1)
    for _ in range(6):
        x = torch.randn(8, 6, generator=generator)
        y = torch.randint(0, 3, (8, ), generator=generator)

        def closure():
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        optimizer.step(closure)
        optimizer.zero_grad()
    return model


@pytest.mark.parametrize('method, kwargs', [
    (ARSAM, dict(max_steps=6, budget=0.5, warmup_iters=1, window=2)),
    (LookSAM, dict(k=2)),
])
def test_grouped_steps_equal_the_one_group_path(monkeypatch, method, kwargs):
    calls = []
    real = sam_math.device_dtype_groups

    def spy(tensors):
        groups = real(tensors)
        calls.append(groups is not None)
        return groups

    monkeypatch.setattr(sam_math, 'device_dtype_groups', spy)
    grouped = _train(method, **kwargs)
    assert any(calls)  # the grouped path ran
    monkeypatch.setattr(sam_math, 'device_dtype_groups', lambda t: None)
    single = _train(method, **kwargs)
    for a, b in zip(grouped.parameters(), single.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
