"""Graph passes that make an exported QDQ graph an integer model (``onnx``
and numpy only).

The exporter writes every quantized weight as a float initializer with a
``QuantizeLinear`` / ``DequantizeLinear`` pair after it, and leaves each
``BatchNormalization`` after its ``Conv``. Two passes fix both:

* :func:`fold_weight_quantizers`: a ``QuantizeLinear`` of a constant is
  evaluated once (ONNX's rounding, half to even, as LSQ's ``round``); its
  integers become an ``int8`` initializer that the ``DequantizeLinear``
  reads, and the float weight is dropped.
* :func:`fold_batchnorm`: a ``BatchNormalization`` whose input is a
  ``Conv`` (its only consumer) is folded into it. With per-output-channel
  weight quantization the fold is exact: ``BN(conv(x, s * q))`` with
  ``k = gamma / sqrt(var + eps)`` is ``conv(x, (s * |k|) * (sign(k) * q))``
  plus the folded bias, so the integers keep their values (a sign flip)
  and only the channel's step changes, as PyTorch's fused Conv-BN QAT
  modules do at convert time. A float ``Conv`` folds ``W * k`` as usual.
"""
from typing import Dict, List, Tuple

import numpy as np

__all__ = ['fold_weight_quantizers', 'fold_batchnorm', 'make_integer_model']


def _constants(graph) -> Dict[str, np.ndarray]:
    from onnx import numpy_helper
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == 'Constant':
            for attribute in node.attribute:
                if attribute.name == 'value':
                    values[node.output[0]] = numpy_helper.to_array(
                        attribute.t)
    return values


def _attribute(node, name, default):
    from onnx import helper
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """A per-axis vector shaped to broadcast along ``axis``."""
    if values.ndim == 0:
        return values
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


def _replace_initializer(graph, name: str, array: np.ndarray) -> None:
    from onnx import numpy_helper
    for index, initializer in enumerate(graph.initializer):
        if initializer.name == name:
            del graph.initializer[index]
            break
    graph.initializer.append(numpy_helper.from_array(array, name))


def _drop_unused_initializers(graph) -> None:
    used = {name for node in graph.node for name in node.input}
    used |= {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


#: Element-wise ops of a weight's constant chain (the n-bit clamp).
_CONSTANT_OPS = dict(Min=np.minimum, Max=np.maximum, Identity=lambda x: x)


def _constant_value(graph, name: str, constants: dict):
    """The value of ``name`` if it is computed from constants only through
    :data:`_CONSTANT_OPS` (None otherwise)."""
    if name in constants:
        return constants[name]
    node = _producer(graph, name)
    if node is None or node.op_type not in _CONSTANT_OPS:
        return None
    values = [_constant_value(graph, i, constants) for i in node.input]
    if any(v is None for v in values):
        return None
    constants[name] = _CONSTANT_OPS[node.op_type](*values)
    return constants[name]


def _drop_dead_nodes(graph) -> None:
    """Nodes none of whose outputs is used (the folded weight chains)."""
    while True:
        used = {name for node in graph.node for name in node.input}
        used |= {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            return
        for node in dead:
            graph.node.remove(node)


def fold_weight_quantizers(model) -> int:
    """Replace each ``QuantizeLinear`` of a constant (an initializer, or
    one clamped by constant Min/Max) by its integers, an ``int8``/``uint8``
    initializer; returns how many."""
    graph = model.graph
    constants = _constants(graph)
    folded = 0
    for node in list(graph.node):
        if node.op_type != 'QuantizeLinear':
            continue
        weight = _constant_value(graph, node.input[0], constants)
        if weight is None:
            continue  # an activation
        weight = weight.astype(np.float64)
        scale = constants[node.input[1]].astype(np.float64)
        zero = constants[node.input[2]]
        axis = _attribute(node, 'axis', 1)
        ints = np.rint(weight / _along(scale, axis, weight.ndim)) + _along(
            zero.astype(np.float64), axis, weight.ndim)
        info = np.iinfo(zero.dtype)
        ints = np.clip(ints, info.min, info.max).astype(zero.dtype)
        _replace_initializer(graph, node.output[0], ints)
        graph.node.remove(node)
        folded += 1
    _drop_dead_nodes(graph)
    _drop_unused_initializers(graph)
    return folded


def _consumers(graph, name: str) -> List:
    return [n for n in graph.node if name in n.input]


def _producer(graph, name: str):
    return next((n for n in graph.node if name in n.output), None)


def _fold_into_weight(graph, conv, k: np.ndarray, constants) -> bool:
    """``W * k`` per output channel for a float or a dequantized int8
    weight; False when it cannot be done exactly."""
    weight_name = conv.input[1]
    weight = _constant_value(graph, weight_name, constants)
    if weight is not None and (_producer(graph, weight_name) is None or
                               _producer(graph, weight_name).op_type
                               == 'Identity'):
        folded = weight * _along(k, 0, weight.ndim).astype(weight.dtype)
        new = f'{weight_name}_bn_folded'
        _replace_initializer(graph, new, folded.astype(weight.dtype))
        conv.input[1] = new
        return True
    dequant = _producer(graph, weight_name)
    if dequant is None or dequant.op_type != 'DequantizeLinear':
        return False
    ints, scale = constants.get(dequant.input[0]), constants.get(
        dequant.input[1])
    zero = constants.get(dequant.input[2]) if len(dequant.input) > 2 else 0
    if (ints is None or scale is None or np.any(zero != 0)
            or _attribute(dequant, 'axis', 1) != 0 or scale.ndim != 1
            or len(_consumers(graph, weight_name)) != 1):
        return False
    sign = np.where(k < 0, -1, 1)
    flipped = ints.astype(np.int64) * _along(sign, 0, ints.ndim)
    info = np.iinfo(ints.dtype)
    if flipped.min() < info.min or flipped.max() > info.max:
        return False  # -128 of a negated channel: left unfolded
    _replace_initializer(graph, f'{dequant.input[0]}_bn_folded',
                         flipped.astype(ints.dtype))
    _replace_initializer(graph, f'{dequant.input[1]}_bn_folded',
                         (scale * np.abs(k)).astype(scale.dtype))
    dequant.input[0] = f'{dequant.input[0]}_bn_folded'
    dequant.input[1] = f'{dequant.input[1]}_bn_folded'
    return True


def fold_batchnorm(model) -> Tuple[int, int]:
    """Fold each ``BatchNormalization`` into the ``Conv`` before it;
    returns ``(folded, left)``."""
    graph = model.graph
    constants = _constants(graph)
    folded = left = 0
    for bn in [n for n in graph.node if n.op_type == 'BatchNormalization']:
        conv = _producer(graph, bn.input[0])
        if (conv is None or conv.op_type != 'Conv'
                or len(_consumers(graph, conv.output[0])) != 1
                or len(bn.output) != 1):
            left += 1
            continue
        params = [_constant_value(graph, name, constants)
                  for name in bn.input[1:5]]
        if any(p is None for p in params):
            left += 1
            continue
        gamma, beta, mean, var = params
        k = gamma / np.sqrt(var + _attribute(bn, 'epsilon', 1e-5))
        if not _fold_into_weight(graph, conv, k, constants):
            left += 1
            continue
        bias = (_constant_value(graph, conv.input[2], constants)
                if len(conv.input) > 2 and conv.input[2] else
                np.zeros_like(mean))
        new_bias = f'{conv.output[0]}_bn_folded_bias'
        _replace_initializer(graph, new_bias,
                             ((bias - mean) * k + beta).astype(mean.dtype))
        if len(conv.input) > 2:
            conv.input[2] = new_bias
        else:
            conv.input.append(new_bias)
        conv.output[0] = bn.output[0]
        graph.node.remove(bn)
        folded += 1
    _drop_unused_initializers(graph)
    return folded, left


def make_integer_model(path: str) -> Dict[str, int]:
    """Both passes on the ONNX file at ``path``, in place; returns what
    they did."""
    import onnx
    model = onnx.load(path)
    weights = fold_weight_quantizers(model)
    folded, left = fold_batchnorm(model)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return dict(integer_weights=weights, batchnorms_folded=folded,
                batchnorms_left=left)
