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
                       eta=0.01, excluded=(), clip_norm=None, rho_of=None):
    """One SAM step on an already preprocessed batch; returns g and g_s.

    ASAM as in its official code: ``T = |w| + eta`` for parameters whose
    name contains ``weight``, ``T = 1`` for the others (biases).
    ``rho_of`` (id -> rho) gives some parameters their own rho: one norm
    over all with rho > 0, each perturbed by its own rho."""
    params = [p for g in optimizer.param_groups for p in g['params']]
    weights = {id(p) for n, p in model.named_parameters() if 'weight' in n}

    def asam_scale(p):
        return p.abs() + eta if adaptive and id(p) in weights else 1.0

    _loss(model, data).backward()
    first = {p: p.grad.detach().clone() for p in params if p.grad is not None}
    rho_of = rho_of or {}
    perturbed = [p for p in params if p.grad is not None
                 and id(p) not in excluded and rho_of.get(id(p), rho) > 0]
    norms = []
    for p in perturbed:
        norms.append((asam_scale(p) * p.grad).norm(2))
    grad_norm = torch.stack(norms).norm(2)
    saved = {}
    with torch.no_grad():
        for p in perturbed:
            saved[p] = p.data.clone()
            p_rho = rho_of.get(id(p), rho)
            p.add_(asam_scale(p)**2 * p.grad * (p_rho / (grad_norm + 1e-12)))
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
