"""LiteEval model (docs/models.md §2): sync rule, gate semantics, teacher forcing, masking, gradients,
config errors, backbone MACs and safe weight loading. Tiny heads (Dc=16, Df=32) keep it fast."""
import pytest
import torch

from edgevid.errors import CheckpointError, ConfigError
from edgevid.models.backbones import create_coarse_cnn, create_fine_cnn, load_state_dict
from edgevid.models.liteeval import LiteEval, LiteEvalConfig, LiteEvalHead, create_liteeval, gumbel_temperature
from edgevid.models.macs import gmacs

DC, DF = 16, 32


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(**kw):
    args = dict(num_classes=5, fine_arch="resnet18", coarse_proj=24, coarse_hidden=DC, fine_hidden=DF, fine_proj=20)
    args.update(kw)
    return LiteEvalConfig(**args)


def tiny_head(seed=0, **kw):
    torch.manual_seed(seed)
    head = LiteEvalHead(tiny_config(**kw))
    # non-trivial BN statistics so eval mode is not an identity on the projections
    with torch.no_grad():
        for m in head.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.01)
                m.running_var.uniform_(0.5, 1.5)
    return head


def feats(n=3, t=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, t, 1280, generator=g), torch.randn(n, t, 512, generator=g)


class Recorder:
    """Forward hooks that record h_c, c_c (coarse LSTM outputs) and h_f (classifier input) per step."""

    def __init__(self, head):
        self.h_c, self.c_c, self.h_f = [], [], []
        self.handles = [head.lstm_c.register_forward_hook(self._coarse),
                        head.classifier.register_forward_hook(self._cls)]

    def _coarse(self, mod, args, out):
        self.h_c.append(out[0].detach().clone())
        self.c_c.append(out[1].detach().clone())

    def _cls(self, mod, args, out):
        self.h_f.append(args[0].detach().clone())

    def close(self):
        for h in self.handles:
            h.remove()


# --- sync rule -------------------------------------------------------------------------------
def test_sync_rule_after_skip_copies_current_coarse_state_into_first_dc_units():
    head = tiny_head().eval()
    fc, ff = feats()
    n, t = fc.shape[:2]
    gates = torch.ones(n, t)
    gates[:, 2] = 0      # skip at step 2 and 4
    gates[:, 4] = 0
    rec = Recorder(head)
    with torch.no_grad():
        head(fc, ff, gates=gates)
    rec.close()
    for step in (2, 4):
        h_f, prev = rec.h_f[step], rec.h_f[step - 1]
        assert torch.equal(h_f[:, :DC], rec.h_c[step])            # current (not previous) coarse state
        assert torch.equal(h_f[:, DC:], prev[:, DC:])             # rest kept from the previous fine state
        assert not torch.allclose(rec.h_c[step], prev[:, :DC])    # a real copy, not a coincidence


def test_sync_rule_for_cell_state_via_steps():
    head = tiny_head().eval()
    fc, ff = feats(n=2, t=2)
    with torch.no_grad():
        state = head.init_state(2)
        v_c, (h_c, c_c), _, _ = head.coarse_step(fc[:, 0], state)
        h_f, c_f = head.fine_step(ff[:, 0], v_c, state[2], state[3])      # step 0: fine
        state = (h_c, c_c, h_f, c_f)
        _, (h_c1, c_c1), _, (h_sync, c_sync) = head.coarse_step(fc[:, 1], state)  # step 1: skip
    assert torch.equal(c_sync[:, :DC], c_c1) and torch.equal(c_sync[:, DC:], c_f[:, DC:])
    assert torch.equal(h_sync[:, :DC], h_c1) and torch.equal(h_sync[:, DC:], h_f[:, DC:])


# --- gate semantics ----------------------------------------------------------------------------
def _set_gate(head, w0, b):
    with torch.no_grad():
        head.gate.weight.zero_()
        head.gate.bias.copy_(torch.tensor(b, dtype=torch.float32))


def test_gate_channel_zero_means_fine_and_ties_go_to_fine():
    head = tiny_head().eval()
    fc, ff = feats()
    _set_gate(head, 0, [3.0, 0.0])
    assert head(fc, ff)["fine"].eq(1).all()
    _set_gate(head, 0, [0.0, 3.0])
    out = head(fc, ff)
    assert out["fine"].eq(0).all()
    _set_gate(head, 0, [0.7, 0.7])   # exact tie
    assert head(fc, ff)["fine"].eq(1).all()


def test_always_skip_never_touches_fine_half_of_the_state():
    head = tiny_head().eval()
    fc, ff = feats()
    rec = Recorder(head)
    with torch.no_grad():
        head(fc, ff, gates=torch.zeros(fc.shape[:2]))
    rec.close()
    for step, h_f in enumerate(rec.h_f):
        assert torch.equal(h_f[:, DC:], torch.zeros_like(h_f[:, DC:]))   # zero initial state kept
        assert torch.equal(h_f[:, :DC], rec.h_c[step])


def test_eval_is_deterministic_and_gate_follows_argmax():
    head = tiny_head().eval()
    fc, ff = feats()
    a, b = head(fc, ff), head(fc, ff)
    for k in a:
        assert torch.equal(a[k], b[k])
    expect = (a["gate_logits"][..., 0] >= a["gate_logits"][..., 1]).float()
    assert torch.equal(a["fine"], expect)


def test_training_gate_is_hard_one_hot_and_random():
    head = tiny_head().train()
    fc, ff = feats(n=8, t=6)
    _set_gate(head, 0, [0.0, 0.0])   # p(fine) = 0.5 under the noise
    torch.manual_seed(0)
    f1 = head(fc, ff, tau=0.7)["fine"]
    f2 = head(fc, ff, tau=0.7)["fine"]
    assert set(f1.detach().unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(f1, f2)
    assert 0.2 < float(f1.detach().mean()) < 0.8


def test_gumbel_temperature_schedule():
    assert gumbel_temperature(0) == 1.0
    assert gumbel_temperature(1000) == pytest.approx(0.904837, abs=1e-6)
    assert gumbel_temperature(10 ** 6) == 0.5
    taus = [gumbel_temperature(s) for s in range(0, 20000, 500)]
    assert all(a >= b for a, b in zip(taus, taus[1:]))


# --- teacher forcing == manual step loop -----------------------------------------------------------
def test_teacher_forced_gates_reproduce_manual_step_loop():
    head = tiny_head().eval()
    fc, ff = feats(n=4, t=7)
    g = torch.Generator().manual_seed(3)
    gates = (torch.rand(4, 7, generator=g) > 0.5).float()
    with torch.no_grad():
        out = head(fc, ff, gates=gates)
        state = head.init_state(4)
        for t in range(7):
            v_c, (h_c, c_c), b, (h_sync, c_sync) = head.coarse_step(fc[:, t], state)
            h_new, c_new = head.fine_step(ff[:, t], v_c, state[2], state[3])
            sel = gates[:, t:t + 1].bool()
            state = (h_c, c_c, torch.where(sel, h_new, h_sync), torch.where(sel, c_new, c_sync))
            torch.testing.assert_close(out["logits"][:, t], head.classifier(state[2]), rtol=0, atol=1e-6)
            torch.testing.assert_close(out["gate_logits"][:, t], b, rtol=0, atol=1e-6)
    assert torch.equal(out["fine"], gates)


def test_free_running_eval_matches_manual_argmax_loop():
    head = tiny_head(seed=5).eval()
    fc, ff = feats(n=4, t=7, seed=9)
    with torch.no_grad():
        out = head(fc, ff)
        state = head.init_state(4)
        for t in range(7):
            v_c, (h_c, c_c), b, (h_sync, c_sync) = head.coarse_step(fc[:, t], state)
            sel = (b.argmax(dim=1) == 0)[:, None] | (b[:, :1] == b[:, 1:])
            h_new, c_new = head.fine_step(ff[:, t], v_c, state[2], state[3])
            state = (h_c, c_c, torch.where(sel, h_new, h_sync), torch.where(sel, c_new, c_sync))
            assert torch.equal(out["fine"][:, t], sel[:, 0].float())
            torch.testing.assert_close(out["logits"][:, t], head.classifier(state[2]), rtol=0, atol=1e-6)


# --- masking -----------------------------------------------------------------------------------
def test_mask_freezes_state_on_padded_steps():
    head = tiny_head().eval()
    fc, ff = feats(n=3, t=6)
    lengths = torch.tensor([6, 3, 1])
    mask = (torch.arange(6)[None] < lengths[:, None]).float()
    with torch.no_grad():
        out = head(fc, ff, mask=mask)
        for i, n in enumerate(lengths.tolist()):
            alone = head(fc[i:i + 1, :n], ff[i:i + 1, :n])
            torch.testing.assert_close(out["logits"][i, :n], alone["logits"][0], rtol=0, atol=1e-6)
            for t in range(n, 6):   # padded steps repeat the last real prediction exactly
                assert torch.equal(out["logits"][i, t], out["logits"][i, n - 1])
    # padding content is irrelevant
    fc2, ff2 = fc.clone(), ff.clone()
    fc2[1, 3:] = 100.0
    ff2[2, 1:] = -7.0
    with torch.no_grad():
        out2 = head(fc2, ff2, mask=mask)
    assert torch.equal(out["logits"], out2["logits"])


# --- gradients ---------------------------------------------------------------------------------
def test_straight_through_gradient_reaches_gate_weights():
    head = tiny_head().train()
    fc, ff = feats(n=4, t=5)
    torch.manual_seed(0)
    out = head(fc, ff, tau=1.0)
    loss = torch.nn.functional.cross_entropy(out["logits"][:, -1], torch.tensor([0, 1, 2, 3])) + out["fine"].mean()
    loss.backward()
    assert head.gate.weight.grad is not None and head.gate.weight.grad.abs().sum() > 0
    assert head.gate.bias.grad.abs().sum() > 0
    for name, p in head.named_parameters():
        assert p.grad is not None, name


def test_teacher_forced_gates_carry_no_gate_gradient():
    head = tiny_head().train()
    fc, ff = feats(n=4, t=5)
    out = head(fc, ff, gates=torch.ones(4, 5))
    out["logits"].sum().backward()
    assert head.gate.weight.grad is None or head.gate.weight.grad.abs().sum() == 0


# --- config errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("kw, words", [
    (dict(coarse_hidden=64, fine_hidden=32), "larger than fine"),
    (dict(fine_arch="resnet152"), "unknown backbone"),
    (dict(coarse_arch="mobilenet_v3"), "unknown backbone"),
    (dict(labels=["a", "b"]), "2 labels for 5 classes"),
    (dict(num_classes=1), "at least 2 classes"),
])
def test_config_errors(kw, words):
    with pytest.raises(ConfigError, match=words):
        tiny_config(**kw)


def test_config_dims_and_dict_roundtrip():
    c = tiny_config(fine_proj=None)
    assert (c.coarse_feat, c.fine_feat, c.fine_proj_dim) == (1280, 512, 512)
    assert LiteEvalConfig(**c.to_dict()) == c
    assert LiteEvalConfig(num_classes=3).fine_feat == 2048


def test_unknown_backbone_builders():
    with pytest.raises(ConfigError):
        create_fine_cnn("vgg16")
    with pytest.raises(ConfigError):
        create_coarse_cnn("resnet18")


# --- backbones: MACs and weights ---------------------------------------------------------------
def test_backbone_macs_resnet18_and_mobilenet():
    assert gmacs(create_fine_cnn("resnet18"), (1, 3, 224, 224)) == pytest.approx(1.814, abs=0.01)
    assert gmacs(create_coarse_cnn("mobilenet_v2"), (1, 3, 112, 112)) == pytest.approx(0.081, abs=0.002)


@pytest.mark.slow
def test_backbone_macs_resnet101():
    assert gmacs(create_fine_cnn("resnet101"), (1, 3, 224, 224)) == pytest.approx(7.80, abs=0.02)


def test_backbone_feature_shapes():
    m = create_liteeval(tiny_config())
    fc, ff = m.features(torch.zeros(1, 2, 3, 112, 112), torch.zeros(1, 2, 3, 224, 224))
    assert fc.shape == (1, 2, 1280) and ff.shape == (1, 2, 512)
    assert isinstance(m, LiteEval)


def test_safe_weight_loading_from_torchvision_state_dict(tmp_path):
    import torchvision

    torch.manual_seed(1)
    net = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(net.state_dict(), str(path))
    fine = create_fine_cnn("resnet18", weights=path)
    trunk = fine.trunk.state_dict()
    assert torch.equal(trunk["0.weight"], net.conv1.weight)             # conv1
    assert torch.equal(trunk["7.1.bn2.running_var"], net.layer4[1].bn2.running_var)
    assert not any(k.startswith("fc") for k in trunk)                   # classifier ignored
    x = torch.randn(1, 3, 64, 64)
    net.eval(), fine.eval()
    with torch.no_grad():
        ref = torch.flatten(net.avgpool(torch.nn.Sequential(*list(net.children())[:-2])(x)), 1)
        torch.testing.assert_close(fine(x), ref)
    # wrapped and DataParallel-prefixed dicts load too
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, str(tmp_path / "w.pth"))
    assert torch.equal(create_fine_cnn("resnet18", weights=tmp_path / "w.pth").trunk[0].weight, net.conv1.weight)

    mb = torchvision.models.mobilenet_v2(weights=None)
    torch.save(mb.state_dict(), str(tmp_path / "mb.pth"))
    coarse = create_coarse_cnn(weights=tmp_path / "mb.pth")
    assert torch.equal(coarse.trunk[0][0].weight, mb.features[0][0].weight)


def test_weight_loading_refuses_wrong_arch_and_bad_files(tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet34(weights=None).state_dict(), str(tmp_path / "r34.pth"))
    with pytest.raises(CheckpointError, match="unexpected keys .*layer1.2"):
        create_fine_cnn("resnet18", weights=tmp_path / "r34.pth")
    bad = torchvision.models.resnet18(weights=None).state_dict()
    bad["layer1.0.conv1.weight"] = torch.zeros(32, 64, 3, 3)      # same keys, one wrong width
    torch.save(bad, str(tmp_path / "narrow.pth"))
    with pytest.raises(CheckpointError, match="do not fit"):
        create_fine_cnn("resnet18", weights=tmp_path / "narrow.pth")
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), str(tmp_path / "mb.pth"))
    with pytest.raises(CheckpointError, match="missing keys"):
        create_fine_cnn("resnet18", weights=tmp_path / "mb.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_state_dict(tmp_path / "junk.pth")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state_dict(tmp_path / "absent.pth")


def test_weight_loading_never_unpickles_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"conv1.weight": Evil()}, str(tmp_path / "evil.pth"))
    with pytest.raises(CheckpointError):
        load_state_dict(tmp_path / "evil.pth")
