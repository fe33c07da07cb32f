"""The ONNX integer model (arsam_mm/quant/onnx_graph.py, export.py): the
integers folded out of the weight quantizers are LSQ's, element for
element; the BatchNorm fold is exact up to float rounding, a negative
gamma included; the graph takes pixels and does the preprocessor's work."""
import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import numpy_helper
from torch import nn

import arsam_mm.quant.onnx_graph as onnx_graph
from arsam_mm.quant.export import InputContract, export_onnx
from arsam_mm.quant.lsq import lsq_to_int, quant_range
from arsam_mm.quant.modules import quantize_module


class _Net(nn.Module):
    """conv-BN-ReLU, conv, linear: an mmengine-style ``mode`` argument."""

    def __init__(self, a_bits):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
            nn.Conv2d(6, 2, 1), nn.Flatten(), nn.Linear(2 * 8 * 8, 3))
        for index in (0, 3, 5):
            quantize_module(self.net[index], 4, a_bits)

    def forward(self, x, mode='tensor'):
        return self.net(x)


CONTRACT = InputContract(3, 8, 8, True, [100., 110., 120.], [50., 60., 70.])


def _model(a_bits=4):
    torch.manual_seed(0)
    model = _Net(a_bits)
    with torch.no_grad():
        bn = model.net[1]
        bn.weight.uniform_(-2, 2)  # negative gammas: sign-flipped channels
        bn.bias.uniform_(-1, 1)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    model.train()
    model(CONTRACT.apply(torch.randint(0, 256, (8, 3, 8, 8))))
    return model.eval()


def _run(path, pixels):
    return onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider']).run(
            None, {'pixels': pixels.numpy()})[0]


def _pixels():
    return torch.randint(0, 256, (5, 3, 8, 8),
                         generator=torch.Generator().manual_seed(1)).float()


def test_weights_are_lsqs_integers_and_the_graph_takes_pixels(tmp_path,
                                                              monkeypatch):
    """Without the BatchNorm fold the graph is the fake-quant model to
    float rounding; its weights are int8 initializers equal to LSQ's."""
    monkeypatch.setattr(onnx_graph, 'fold_batchnorm', lambda model: (0, 0))
    model, path = _model(), str(tmp_path / 'm.onnx')
    done = export_onnx(model, CONTRACT, path)
    assert done['integer_weights'] == 3
    graph = onnx.load(path).graph
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    dequant = [n for n in graph.node if n.op_type == 'DequantizeLinear'
               and n.input[0] in values]
    assert len(dequant) == 3
    for node, index in zip(dequant, (0, 3, 5)):
        layer = model.net[index]
        qn, qp = quant_range(layer.w_bits, True)
        want = lsq_to_int(layer.weight, layer.weight_step, qn, qp)
        assert values[node.input[0]].dtype == np.int8
        assert np.array_equal(values[node.input[0]], want.numpy())
    assert not any(v.dtype == np.float32 and v.ndim == 4 and v.size >= 54
                   for v in values.values())  # no float conv weight left
    pixels = _pixels()
    with torch.no_grad():
        want = model(CONTRACT.apply(pixels))
    np.testing.assert_allclose(_run(path, pixels), want.numpy(), atol=1e-5)


def test_the_batchnorm_fold_is_exact_up_to_float_rounding(tmp_path):
    """Activations unquantized (nothing downstream rounds): the folded
    graph equals conv -> BatchNorm -> ... of the fake-quant model."""
    model, path = _model(a_bits=None), str(tmp_path / 'm.onnx')
    done = export_onnx(model, CONTRACT, path)
    assert done['batchnorms_folded'] == 1 and done['batchnorms_left'] == 0
    graph = onnx.load(path).graph
    assert 'BatchNormalization' not in {n.op_type for n in graph.node}
    pixels = _pixels()
    with torch.no_grad():
        want = model(CONTRACT.apply(pixels))
    np.testing.assert_allclose(_run(path, pixels), want.numpy(), rtol=1e-4,
                               atol=1e-5)


def test_a_channel_whose_flip_would_overflow_int8_stays_unfolded(tmp_path):
    """8-bit weights reach -128; negated by a negative gamma that is 128,
    not an int8: that BatchNorm is left in the graph, still correct."""
    model = _model(a_bits=None)
    layer = model.net[0]
    with torch.no_grad():
        layer.weight_step.fill_(0.01)
        layer.weight[0, 0, 0, 0] = -10.0  # far below -128 steps
        model.net[1].weight[0] = -1.0
    layer.w_bits = 8
    path = str(tmp_path / 'm.onnx')
    done = export_onnx(model, CONTRACT, path)
    assert done['batchnorms_folded'] == 0 and done['batchnorms_left'] == 1
    pixels = _pixels()
    with torch.no_grad():
        want = model(CONTRACT.apply(pixels))
    np.testing.assert_allclose(_run(path, pixels), want.numpy(), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize('swap', [False, True])
def test_the_contract_reproduces_the_preprocessor_or_is_refused(swap):
    from mmengine.model import ImgDataPreprocessor

    from arsam_mm.quant.export import input_contract
    preprocessor = ImgDataPreprocessor(mean=[10., 20., 30.],
                                       std=[2., 3., 4.], bgr_to_rgb=swap)
    pixels = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    contract = input_contract(preprocessor, pixels)
    assert contract.swap_channels == swap
    assert contract.mean == [10., 20., 30.] and contract.std == [2., 3., 4.]
    padding = ImgDataPreprocessor(mean=[10., 20., 30.], std=[2., 3., 4.],
                                  pad_size_divisor=16)
    with pytest.raises(ValueError, match='pads, resizes'):
        input_contract(padding, pixels)
