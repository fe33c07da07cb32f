"""A plain-PyTorch SAM/ASAM step, written the textbook way (one tensor at a
time, davda54/sam style) as the reference the wrappers are checked against.
"""
import torch
from torch.nn.modules.batchnorm import _BatchNorm


def _loss(model, data):
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    return loss


def reference_sam_step(model, data, optimizer, rho, adaptive=False,
                       eta=0.01, excluded=(), clip_norm=None):
    """One SAM step on an already preprocessed batch; returns g and g_s."""
    params = [p for g in optimizer.param_groups for p in g['params']]
    _loss(model, data).backward()
    first = {p: p.grad.detach().clone() for p in params if p.grad is not None}
    perturbed = [p for p in params if p.grad is not None
                 and id(p) not in excluded]
    norms = []
    for p in perturbed:
        scale = (p.abs() + eta) if adaptive else 1.0
        norms.append((scale * p.grad).norm(2))
    grad_norm = torch.stack(norms).norm(2)
    saved = {}
    with torch.no_grad():
        for p in perturbed:
            saved[p] = p.data.clone()
            factor = (p.abs() + eta)**2 if adaptive else 1.0
            p.add_(factor * p.grad * (rho / (grad_norm + 1e-12)))
    optimizer.zero_grad()
    momenta = {}
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            momenta[m] = m.momentum
            m.momentum = 0.0
    _loss(model, data).backward()
    for m, momentum in momenta.items():
        m.momentum = momentum
    with torch.no_grad():
        for p in perturbed:
            p.data.copy_(saved[p])
    second = {p: p.grad.detach().clone() for p in params if p.grad is not None}
    if clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, clip_norm)
    optimizer.step()
    optimizer.zero_grad()
    return first, second
