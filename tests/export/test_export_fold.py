"""BatchNorm folding, the explicit LSTM step and the L2 norm: equal to the torch modules they replace."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tests.helpers.export_helpers import randomize_bn
from torch import nn

from edgevid.errors import ExportError
from edgevid.export.liteeval import L2Norm, LSTMStep, fold_bn_linear_bn, fold_projection
from edgevid.models.liteeval import _projection


def _projection_with_stats(inp=48, out=24, seed=0):
    torch.manual_seed(seed)
    proj = _projection(inp, out)
    randomize_bn(proj, seed)
    return proj.eval()


def test_fold_is_exact_in_float64():
    proj = _projection_with_stats().double()
    folded = fold_projection(proj)
    assert [type(m) for m in folded] == [nn.Linear, nn.ReLU]
    x = torch.randn(64, 48, dtype=torch.float64)
    with torch.no_grad():
        err = (folded(x) - proj(x)).abs().max().item()
    assert err < 1e-12


def test_fold_in_float32_matches_to_rounding():
    proj = _projection_with_stats(seed=1)
    folded = fold_projection(proj)
    assert folded[0].weight.dtype == torch.float32
    x = torch.randn(64, 48)
    with torch.no_grad():
        ref = proj.double()(x.double())
        err = (folded(x).double() - ref).abs().max().item()
    assert err < 1e-5 * max(1.0, ref.abs().max().item())


def test_fold_before_the_relu_too():
    """BN → Linear → BN without the ReLU (negative values matter), and either BN missing."""
    torch.manual_seed(2)
    bn1, lin, bn2 = nn.BatchNorm1d(10).double(), nn.Linear(10, 6).double(), nn.BatchNorm1d(6).double()
    randomize_bn(nn.Sequential(bn1, bn2), 2)
    seq = nn.Sequential(bn1, lin, bn2).eval()
    x = torch.randn(20, 10, dtype=torch.float64)
    with torch.no_grad():
        assert (fold_bn_linear_bn(bn1, lin, bn2)(x) - seq(x)).abs().max() < 1e-12
        assert (fold_bn_linear_bn(None, lin, bn2)(x) - bn2(lin(x))).abs().max() < 1e-12
        assert (fold_bn_linear_bn(bn1, lin, None)(x) - lin(bn1(x))).abs().max() < 1e-12


def test_fold_does_not_touch_the_source():
    proj = _projection_with_stats()
    before = {k: v.clone() for k, v in proj.state_dict().items()}
    fold_projection(proj)
    for k, v in proj.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_fold_refuses_other_layouts_and_batch_statistics():
    with pytest.raises(ExportError, match="projection layout"):
        fold_projection(nn.Sequential(nn.Linear(4, 4), nn.ReLU()))
    proj = nn.Sequential(nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU())
    with pytest.raises(ExportError, match="running statistics"):
        fold_projection(proj)


def test_lstm_step_equals_lstm_cell():
    torch.manual_seed(3)
    cell = nn.LSTMCell(12, 7).double()
    step = LSTMStep(cell).double()
    x, h, c = (torch.randn(5, n, dtype=torch.float64) for n in (12, 7, 7))
    with torch.no_grad():
        h_ref, c_ref = cell(x, (h, c))
        h_new, c_new = step(x, h, c)
    assert (h_new - h_ref).abs().max() < 1e-12 and (c_new - c_ref).abs().max() < 1e-12


def test_lstm_step_float32():
    torch.manual_seed(4)
    cell = nn.LSTMCell(40, 24)
    step = LSTMStep(cell)
    x, h, c = (torch.randn(5, n) for n in (40, 24, 24))
    with torch.no_grad():
        h_ref, c_ref = cell(x, (h, c))
        h_new, c_new = step(x, h, c)
    assert (h_new - h_ref).abs().max() < 1e-6 and (c_new - c_ref).abs().max() < 1e-6


def test_l2norm_equals_normalize_including_zero_rows():
    x = torch.randn(6, 30)
    x[2] = 0.0
    x[3] *= 1e-20  # below eps: divided by eps, like F.normalize
    with torch.no_grad():
        got = L2Norm()(x)
    ref = F.normalize(x, p=2.0, dim=1, eps=1e-12)
    assert torch.allclose(got, ref, rtol=1e-6, atol=1e-30)
    assert torch.equal(got[2], torch.zeros(30))
