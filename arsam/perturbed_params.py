"""Which parameters a SAM-family wrapper perturbs, and by how much.

One component for every wrapper that moves the weights before a pass
(SAM and its fast variants, MSAM), so that they agree on:

* ``exclude``: regexes over parameter names that are never perturbed;
* quantizer step sizes (``lsq_step`` parameters of ``FakeQuantHook``),
  never perturbed (SAQ, Liu et al. 2021);
* per-group ``rho``: it lives in the optimizer's param groups, as ``lr``
  does, so ``paramwise_cfg.custom_keys`` set it per group and mmengine's
  parameter schedulers (``param_name='rho'``) drive it; ``rho = 0`` leaves
  a group untouched;
* ASAM's ``T = |w| + eta`` on weights only (the official ASAM code's
  ``'weight' in name``);
* SAQ routing: layers in ``perturb_quantized`` mode get their share of the
  perturbation as ``quantized_weight_offset`` (``arsam_mm/quant``).
"""
import re
from contextlib import contextmanager
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from . import _log
from ._checks import ConfigError, check_number
from .sam_math import clone_tensors, sam_perturbation

_COMPILED_PREFIX = re.compile(r'(^|\.)_orig_mod\.')

__all__ = [
    'PerturbedParams', 'pick', 'put_rho_in_param_groups',
    'restore_rho_in_param_groups'
]


def pick(items: Optional[list], index: Optional[List[int]]) -> Optional[list]:
    """``items`` at ``index`` (all of them when ``index`` is None)."""
    if items is None or index is None:
        return items
    return [items[i] for i in index]


def compile_patterns(exclude) -> List['re.Pattern']:
    if exclude is None:
        return []
    patterns = [exclude] if isinstance(exclude, str) else exclude
    if not isinstance(patterns, (list, tuple)) or not all(
            isinstance(p, str) for p in patterns):
        raise ConfigError(
            'exclude', f'must be a regex or a list of regexes, got '
            f'{exclude!r}', "E.g. exclude=['bn', r'\\.bias$'].")
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise ConfigError(
                'exclude', f'{pattern!r} is not a valid regex ({error})',
                'Escape special characters such as [ ( . with a '
                'backslash.') from None
    return compiled


def put_rho_in_param_groups(optimizer, rho: float) -> List[float]:
    """``rho`` becomes the value of every param group that sets none, of
    groups added later and of mmengine's ``base_param_settings`` (which
    ``OptimWrapper.__init__`` copies from ``optimizer.defaults``): call it
    before ``OptimWrapper.__init__``. Returns each group's radius."""
    optimizer.defaults.setdefault('rho', rho)
    for i, group in enumerate(optimizer.param_groups):
        group.setdefault('rho', rho)
        check_number('rho', group['rho'], low=0, where=f'param group {i}')
    return [group['rho'] for group in optimizer.param_groups]


def restore_rho_in_param_groups(optimizer, group_rhos: List[float]) -> None:
    """Put back the radius of each param group that lost it.

    ``Optimizer.load_state_dict`` rebuilds the param groups from the saved
    ones, and a plain SGD/Adam checkpoint saved none with ``rho``: each
    such group gets the radius it was built with (``group_rhos``, as
    :func:`put_rho_in_param_groups` returned them), a group added since
    then the optimizer's default. A saved ``rho`` (a SAM-family checkpoint,
    a scheduled radius) is kept.
    """
    default = optimizer.defaults['rho']
    for i, group in enumerate(optimizer.param_groups):
        if 'rho' not in group:
            group['rho'] = group_rhos[i] if i < len(group_rhos) else default


class PerturbedParams:
    """The perturbed subset of an optimizer's parameters.

    Args:
        exclude (str | list[str], optional): regexes over parameter names
            (as in ``model.named_parameters()``) never perturbed.
    """

    def __init__(self,
                 exclude: Optional[Union[str, Sequence[str]]] = None):
        self.exclude = compile_patterns(exclude)
        self.params: List[nn.Parameter] = []  # every trainable parameter
        self.perturbed: List[nn.Parameter] = []
        self.asam_scaled: List[bool] = []
        self.saq_layers: List[nn.Module] = []
        self._quantized_layers: Optional[list] = None
        self._group_of: List[int] = []
        self._rho_key: Optional[list] = None
        self._saved: Optional[tuple] = None  # move(): (latent, weights)

    def select(self, model: nn.Module, optimizer) -> None:
        """Split ``optimizer``'s trainable parameters of ``model`` (the
        inner, unwrapped model). Refuses an ``exclude`` that leaves
        nothing to perturb."""
        # torch.compile's wrapper adds '_orig_mod.' to every name (DDP's
        # 'module.' is gone already: the model here is the inner one).
        names = {id(p): _COMPILED_PREFIX.sub(r'\1', n)
                 for n, p in model.named_parameters()}
        params = [
            p for group in optimizer.param_groups for p in group['params']
            if p.requires_grad
        ]
        perturbed = [
            p for p in params if not getattr(p, 'lsq_step', False)
            and not any(r.search(names.get(id(p), '')) for r in self.exclude)
        ]
        for pattern in self.exclude:
            if not any(pattern.search(names.get(id(p), '')) for p in params):
                _log.warning(
                    f'exclude: {pattern.pattern!r} matches no trainable '
                    'parameter name (names as in model.named_parameters(), '
                    "e.g. 'backbone.conv1.weight'); nothing is excluded by "
                    'it.')
        if not perturbed:
            raise ConfigError(
                'exclude', 'matches every trainable parameter',
                'Narrow the regexes so that some parameters are perturbed.')
        self.params, self.perturbed = params, perturbed
        self.asam_scaled = [
            'weight' in names.get(id(p), 'weight') for p in perturbed
        ]
        group_of = {id(p): i for i, group in enumerate(
            optimizer.param_groups) for p in group['params']}
        self._group_of = [group_of[id(p)] for p in perturbed]
        self._rho_key = None
        saq = {id(m.weight): m for m in model.modules()
               if getattr(m, 'perturb_quantized', False)}
        self.saq_layers = list(saq.values())
        self._quantized_layers = ([saq.get(id(p)) for p in perturbed]
                                  if self.saq_layers else None)

    def set_on_saq_layers(self, name: str, value) -> None:
        for layer in self.saq_layers:
            setattr(layer, name, value)

    def with_grads(self):
        """``(params, grads, index)`` of the perturbed parameters that have
        a gradient; ``index`` lists their positions, None when all do."""
        params = self.perturbed
        grads = [p.grad for p in params]
        if all(g is not None for g in grads):
            return params, grads, None
        index = [i for i, g in enumerate(grads) if g is not None]
        if not index:
            raise RuntimeError(
                'No perturbed parameter has a gradient after the first '
                'pass: the backward did not run, or the optimizer holds '
                "another model's parameters. In a plain loop the closure "
                'must call loss.backward() and return the loss; build the '
                "base optimizer over this model's parameters.")
        return [params[i] for i in index], [grads[i] for i in index], index

    def group_rhos(self, optimizer, index=None) -> Union[float, List[float]]:
        """This step's rho of each perturbed tensor (``index`` as in
        :meth:`with_grads`), or one float when all share it. The
        per-tensor list is rebuilt only when a group's rho changed."""
        key = [group['rho'] for group in optimizer.param_groups]
        if key != self._rho_key:
            self._rho_key = key
            per_tensor = [key[g] for g in self._group_of]
            self._rho_uniform = (per_tensor[0]
                                 if len(set(per_tensor)) == 1 else None)
            self._rho_per_tensor = per_tensor
        if self._rho_uniform is not None:
            return self._rho_uniform
        return pick(self._rho_per_tensor, index)

    def perturbation(self, optimizer, params, directions, index=None, *,
                     sign: float = 1.0, eps: float = 1e-12,
                     adaptive: bool = False, eta: float = 0.01,
                     norm: Optional[Tensor] = None):
        """``e = sign * rho * d / ||d||`` (ASAM's form when ``adaptive``)
        for the latent weights it applies to, as ``(params, e)``; SAQ
        layers get theirs as ``quantized_weight_offset``.

        ``directions`` are aligned with ``params`` (``index`` as in
        :meth:`with_grads`). One global norm over every tensor with
        ``rho > 0``; each tensor's share of ``e`` scales with its group's
        rho. ``norm``: ``||d||`` if the caller has it.
        """
        scaled = pick(self.asam_scaled, index) if adaptive else None
        layers = pick(self._quantized_layers, index)
        if layers is not None:
            norm = None
            # dL/dQ(w) where the layer ran (a frozen/unused one: dL/dw).
            directions = [
                d if layer is None or layer.quantized_weight_grad is None
                else layer.quantized_weight_grad
                for layer, d in zip(layers, directions)
            ]
        rhos = self.group_rhos(optimizer, index)
        if isinstance(rhos, list):
            norm = None
            active = [i for i, rho in enumerate(rhos) if rho > 0]
            params, directions = pick(params, active), pick(directions, active)
            scaled, layers = pick(scaled, active), pick(layers, active)
            rhos = pick(rhos, active)
        perturbation, _ = sam_perturbation(
            params, directions, sign * (1.0 if isinstance(rhos, list) else
                                        rhos), eps, adaptive, eta, scaled,
            norm)
        if isinstance(rhos, list):
            torch._foreach_mul_(perturbation, rhos)
        if layers is None:
            return params, perturbation
        latent, latent_e = [], []
        for p, e, layer in zip(params, perturbation, layers):
            if layer is not None:
                layer.quantized_weight_offset = e
            else:
                latent.append(p)
                latent_e.append(e)
        return latent, latent_e

    @torch.no_grad()
    def move(self, latent: List[Tensor], perturbation: List[Tensor]) -> None:
        """``w += e`` for the latent weights and ``e`` that
        :meth:`perturbation` returned, keeping a copy of ``w``."""
        self._saved = (latent, clone_tensors(latent))
        torch._foreach_add_(latent, perturbation)

    def move_along(self, optimizer, directions: List[Optional[Tensor]],
                   **kwargs) -> None:
        """:meth:`move` by :meth:`perturbation` along ``directions``,
        aligned with :attr:`perturbed` (None: that tensor stays put)."""
        index = [i for i, d in enumerate(directions) if d is not None]
        index = None if len(index) == len(directions) else index
        self.move(*self.perturbation(optimizer, pick(self.perturbed, index),
                                     pick(directions, index), index,
                                     **kwargs))

    @contextmanager
    def restored_on_error(self):
        """:meth:`restore` if the block raises (a forward or backward that
        failed while the weights were moved)."""
        try:
            yield
        except BaseException:
            self.restore()
            raise

    @torch.no_grad()
    def restore(self) -> None:
        """Put back, bit for bit, what :meth:`move` moved (SAQ layers'
        offsets included: :meth:`perturbation` sets them only for a move);
        nothing when nothing is moved, so a step that moved nothing pays
        nothing here."""
        if self._saved is None:
            return
        latent, weights = self._saved
        self._saved = None
        self.set_on_saq_layers('quantized_weight_offset', None)
        torch._foreach_copy_(latent, weights)
