"""CNN → PreRNN conversion: the identity check (docs/models.md §4.7), backbone/step split, errors."""
import pytest
import torch
from torch import nn

from edgevid.errors import CheckpointError, ConfigError
from edgevid.models.prernn import PreRNNConfig, build_cnn, convert, create_prernn, small_vgg


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    pass


def _zero_whh(model):
    with torch.no_grad():
        model.recurrence.weight_hh.zero_()
    return model.eval()


@pytest.mark.parametrize("layer", ["fc6", "fc7", "fc8"])
def test_identity_vrnn_fc_on_vgg_head(layer):
    """W_hh = 0, H = the layer's activation: the VRNN PreRNN layer reproduces the CNN per frame (1e-5)."""
    torch.manual_seed(0)
    cnn = small_vgg(5).eval()
    model = _zero_whh(convert(cnn, layer=layer, cell="vrnn", form="prernn"))
    frames = torch.randn(2, 4, 3, 16, 16)
    out = model(frames)
    ref = cnn(frames.flatten(0, 1)).view(2, 4, -1)
    err = (out["logits"] - ref).abs().max().item()
    assert err < 1e-5, err


def test_identity_vrnn_conv_on_resnet18():
    """Conv case: P(ReLU(B(W*x) + γ)) through a ReLU VRNN with W_hh = 0 is resnet18's pooled feature."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    cnn = torchvision.models.resnet18(weights=None, num_classes=7).eval()
    for m in cnn.modules():   # non-trivial frozen statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    model = _zero_whh(convert(cnn, layer="layer4", cell="vrnn", form="prernn"))
    frames = torch.randn(1, 3, 3, 64, 64)
    out = model(frames)
    flat = frames.flatten(0, 1)
    trunk = nn.Sequential(*list(cnn.children())[:-1])
    pooled = trunk(flat).flatten(1).view(1, 3, -1)
    assert (out["hidden"] - pooled).abs().max().item() < 1e-5
    assert (out["logits"] - cnn(flat).view(1, 3, -1)).abs().max().item() < 1e-5
    literal = _zero_whh(convert(cnn, layer="layer4", cell="vrnn", form="prernn", pre_pool_relu=False))
    assert (literal(frames)["hidden"] - pooled).abs().max().item() > 1e-3   # eq. 6 as printed: no ReLU before P


@pytest.mark.parametrize("cell,form,width", [("lstm", "sih", 32), ("gru", "prernn", 96), ("vrnn", "prernn", 32),
                                             ("lstm", "traditional", 4 * 32)])
def test_backbone_step_split_matches_sequence(cell, form, width):
    torch.manual_seed(1)
    model = create_prernn(PreRNNConfig(num_classes=3, arch="small_vgg", layer="fc7", cell=cell, form=form,
                                       image_size=16), cnn=small_vgg(3)).eval()
    frames = torch.randn(2, 3, 3, 16, 16)
    seq = model(frames)["logits"]
    h = torch.zeros(2, model.hidden)
    c = torch.zeros(2, model.hidden) if model.has_cell_state else None
    backbone, step = model.backbone_graph(), model.step_graph()
    for t in range(3):
        v = backbone(frames[:, t])
        assert v.shape == (2, width)
        outs = step(v, h, c) if c is not None else step(v, h)
        h, logits = outs[0], outs[-1]
        c = outs[1] if c is not None else None
        torch.testing.assert_close(logits, seq[:, t], rtol=0, atol=1e-5)
    assert step.input_names[:2] == ["v", "h_in"] and step.output_names[-1] == "logits"


def test_resnet_sih_gate_copies_and_shapes():
    torchvision = pytest.importorskip("torchvision")
    cnn = torchvision.models.resnet18(weights=None, num_classes=4).eval()
    pre = convert(cnn, layer="layer4", cell="gru", form="prernn")
    sih = convert(cnn, layer="layer4", cell="lstm", form="sih")
    assert pre.drive.weight.shape[0] == 3 * 512 and sih.drive.weight.shape[0] == 512
    x = torch.randn(1, 3, 64, 64)
    assert pre.backbone(x).shape == (1, 3 * 512) and sih.backbone(x).shape == (1, 512)
    u = pre.backbone(x)
    torch.testing.assert_close(u[:, :512], u[:, 512:1024])   # each u_t(g) starts equal (eq. 7)


def test_conversion_errors(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    with pytest.raises(ConfigError, match="output size"):
        convert(small_vgg(3), layer="fc6", cell="lstm", form="sih", hidden=7)
    with pytest.raises(ConfigError, match="only Linear"):
        convert(small_vgg(3), layer="classifier.1", cell="lstm", form="sih")
    with pytest.raises(ConfigError, match="supported"):
        convert(small_vgg(3), layer="features.0", cell="lstm", form="sih")
    with pytest.raises(ConfigError, match="supported"):
        convert(torchvision.models.resnet18(weights=None), layer="layer3", cell="gru", form="prernn")
    with pytest.raises(ConfigError, match="cannot convert"):
        convert(nn.Sequential(nn.Linear(3, 3)), layer="fc6", cell="gru", form="prernn")
    with pytest.raises(ConfigError, match="SIH"):
        PreRNNConfig(num_classes=3, cell="vrnn", form="sih")
    path = tmp_path / "vgg.pt"
    torch.save(small_vgg(3).state_dict(), str(path))
    with pytest.raises(CheckpointError, match="do not fit"):
        build_cnn("resnet18", 3, weights=path)
    net = build_cnn("small_vgg", 3, weights=path)   # the same architecture loads
    torch.testing.assert_close(net.classifier[0].weight, torch.load(str(path))["classifier.0.weight"])


def test_original_cnn_is_untouched():
    cnn = small_vgg(3)
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    model = convert(cnn, layer="fc6", cell="lstm", form="sih")
    with torch.no_grad():
        model.drive.weight.add_(1.0)
    for k, v in cnn.state_dict().items():
        torch.testing.assert_close(v, before[k])
