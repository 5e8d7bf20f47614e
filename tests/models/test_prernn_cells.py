"""PreRNN cells written to the patent's equations (docs/models.md §4.1–4.6)."""
import pytest
import torch
from torch import nn

from edgevid.errors import ConfigError
from edgevid.models.prernn import Recurrence, make_layer, recording_gates
from edgevid.models.prernn.params import added_parameters, format_parameter_table, reduction


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    pass


def test_traditional_lstm_equals_lstmcell():
    """Eq. (2) with stacked rows (i, f, g, o) is torch's LSTMCell (same order) with b_hh = 0."""
    torch.manual_seed(0)
    layer = make_layer("lstm", "traditional", in_features=5, hidden=4)
    ref = nn.LSTMCell(5, 4)
    with torch.no_grad():
        ref.weight_ih.copy_(layer.drive.weight)
        ref.bias_ih.copy_(layer.drive.bias)
        ref.weight_hh.copy_(layer.recurrence.weight_hh)
        ref.bias_hh.zero_()
    x = torch.randn(3, 6, 5)
    out, (h, c) = layer(x)
    hr, cr = torch.zeros(3, 4), torch.zeros(3, 4)
    for t in range(6):
        hr, cr = ref(x[:, t], (hr, cr))
        torch.testing.assert_close(out[:, t], hr, rtol=0, atol=1e-6)
    torch.testing.assert_close(c, cr, rtol=0, atol=1e-6)


def test_gru_is_the_patent_cell_not_torch():
    """Eq. (3): h = (1−z)⊙h + z⊙h~, h~ = tanh(W_ih y + W_hh (r⊙h)); differs from nn.GRUCell."""
    torch.manual_seed(1)
    layer = make_layer("gru", "traditional", in_features=3, hidden=4)
    x, h0 = torch.randn(2, 3), torch.randn(2, 4)
    u = layer.drive(x)
    w = layer.recurrence.weight_hh
    r = torch.sigmoid(u[:, :4] + h0 @ w[:4].t())
    z = torch.sigmoid(u[:, 4:8] + h0 @ w[4:8].t())
    cand = torch.tanh(u[:, 8:] + (r * h0) @ w[8:].t())
    expect = (1 - z) * h0 + z * cand
    h, _ = layer.step(u, (h0,))
    torch.testing.assert_close(h, expect, rtol=0, atol=1e-6)
    ref = nn.GRUCell(3, 4)
    with torch.no_grad():
        ref.weight_ih.copy_(layer.drive.weight)
        ref.bias_ih.copy_(layer.drive.bias)
        ref.weight_hh.copy_(w)
        ref.bias_hh.zero_()
    assert (ref(x, h0) - h).abs().max() > 1e-3


def test_sih_shares_one_drive_and_prernn_copies_wxy():
    torch.manual_seed(2)
    fc = nn.Linear(6, 5)
    pre = make_layer("lstm", "prernn", pretrained=fc)
    sih = make_layer("lstm", "sih", pretrained=fc)
    assert pre.drive.weight.shape == (20, 6) and sih.drive.weight.shape == (5, 6)
    for k in range(4):   # every W_ig^p starts as W_xy (eq. 7)
        torch.testing.assert_close(pre.drive.weight[5 * k:5 * (k + 1)], fc.weight)
    sih.recurrence.weight_hh.data.copy_(pre.recurrence.weight_hh.data)
    x = torch.randn(2, 3, 6)
    torch.testing.assert_close(pre(x)[0], sih(x)[0])   # identical until the gate copies diverge
    v = sih.input_drive(x[:, 0])
    with recording_gates(sih) as rec:
        h, (h1, c1) = sih.step(v)
    i = torch.sigmoid(v)   # h_{-1} = 0: every gate sees only v_t (eq. 11)
    torch.testing.assert_close(rec["recurrence"]["f"][0], i)
    torch.testing.assert_close(c1, i * torch.tanh(v))


def test_errors_and_gate_bias():
    with pytest.raises(ConfigError, match="SIH"):
        make_layer("vrnn", "sih", pretrained=nn.Linear(3, 3))
    with pytest.raises(ConfigError, match="output size 4"):
        make_layer("gru", "prernn", pretrained=nn.Linear(3, 4), hidden=8)
    with pytest.raises(ConfigError, match="unknown cell"):
        Recurrence("rnn", 3)
    rec = Recurrence("gru", 3, gate_bias=True)
    assert rec.bias.shape == (9,)
    assert Recurrence("lstm", 3).bias is None
    bound = 1 / 3 ** 0.5
    assert rec.weight_hh.abs().max() <= bound


def test_parameter_accounting_reproduces_models_md():
    """docs/models.md §4.9: LSTM fc6 82.1%, GRU fc6 80.3%, LSTM fc7 42.9%, GRU fc7 40.0%; 64.5% counting W_xy."""
    fc6, fc7 = (25088, 4096), (4096, 4096)
    got = {(c, n): round(100 * reduction(c, *dh)["sih_vs_prernn"], 1)
           for c in ("lstm", "gru") for n, dh in (("fc6", fc6), ("fc7", fc7))}
    assert got == {("lstm", "fc6"): 82.1, ("gru", "fc6"): 80.3, ("lstm", "fc7"): 42.9, ("gru", "fc7"): 40.0}
    assert round(100 * reduction("lstm", *fc6, count_wxy=True)["sih_vs_prernn"], 1) == 64.5
    assert added_parameters("lstm", *fc6)["sih"] == 4 * 4096 ** 2
    assert added_parameters("vrnn", 10, 4) == {"traditional": 56, "prernn": 16}
    text = format_parameter_table()
    assert "82.1%" in text and "up to 82%" in text


def test_layer_parameters_match_accounting():
    fc = nn.Linear(12, 5, bias=False)
    for form in ("prernn", "sih"):
        layer = make_layer("gru", form, pretrained=fc)
        weights = sum(p.numel() for n, p in layer.named_parameters() if "bias" not in n)
        assert weights - 12 * 5 == added_parameters("gru", 12, 5)[form]
