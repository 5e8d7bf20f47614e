"""LiteEval training: planted signals, feature extraction and its cache, BN recalibration,
train_liteeval checkpoints (weights_only), resume, end-to-end mode and errors."""
import copy

import numpy as np
import pytest
import torch

from edgevid.errors import CheckpointError, ConfigError, DataError
from edgevid.models.backbones import create_coarse_cnn, create_fine_cnn
from edgevid.models.liteeval import LiteEvalHead
from edgevid.preprocess import Preprocessor
from edgevid.spec import PreprocessSpec
from edgevid.train import extract_features, load_liteeval_checkpoint, recalibrate_bn, train_liteeval
from edgevid.train.liteeval import dataset_fingerprint, liteeval_evaluate, liteeval_loss_fn
from edgevid.train.loop import Trainer


# --- a tiny head learns planted signals ------------------------------------------------------------
def planted(where, n=128, steps=6, classes=4, seed=0):
    """Class prototype added to the fine (or coarse) features of every step; the other stream is noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    feat_c, feat_f = torch.randn(n, steps, 1280, generator=g), torch.randn(n, steps, 512, generator=g)
    proto_c = 0.5 * torch.randn(classes, 1280, generator=torch.Generator().manual_seed(99))
    proto_f = 0.5 * torch.randn(classes, 512, generator=torch.Generator().manual_seed(98))
    if where == "fine":
        feat_f = feat_f + proto_f[labels][:, None]
    else:
        feat_c = feat_c + proto_c[labels][:, None]
    return feat_c, feat_f, labels, torch.ones(n, steps)


def fit_planted(tiny_config, where, gamma, gate_bias, epochs=6):
    torch.manual_seed(0)
    head = LiteEvalHead(tiny_config(num_classes=4))
    with torch.no_grad():
        head.gate.bias.copy_(torch.tensor([gate_bias, 0.0]))   # start far from the expected gate use
    train, val = planted(where), planted(where, seed=1)
    head.eval()
    start = liteeval_evaluate(gamma)(head, [val])
    res = Trainer(head, lambda m: torch.optim.Adam(m.parameters(), lr=1e-2, weight_decay=1e-4),
                  liteeval_loss_fn(gamma, 2.0), train, val_data=val, evaluate=liteeval_evaluate(gamma, 2.0),
                  epochs=epochs, batch_size=32, monitor="accuracy", seed=0).fit()
    head.eval()
    with torch.no_grad():
        skip = head(val[0], val[1], gates=torch.zeros(val[3].shape))
    skip_acc = float((skip["logits"][:, -1].argmax(1) == val[2]).float().mean())
    return start, res.history[-1]["val"], skip_acc


def test_planted_fine_signal_is_learned_through_the_fine_gate(tiny_config):
    # γ·T = 1.2: about one fine read per video pays; seeds 0-5 gave accuracy 0.86-1.0, fine rate 0.17-0.23
    start, end, skip_acc = fit_planted(tiny_config, "fine", gamma=0.2, gate_bias=-2.0, epochs=8)
    assert start["fine_rate"] == 0.0                    # the gate starts closed
    assert end["accuracy"] >= 0.75                       # chance is 0.25
    assert end["fine_rate"] >= 0.08                      # ... because it learned to read fine features
    assert skip_acc <= 0.45                              # without fine reads: about chance


def test_planted_coarse_signal_drives_the_fine_rate_towards_gamma(tiny_config):
    # seeds 0-5: fine rate 0.02-0.16 after starting at 1.0
    start, end, skip_acc = fit_planted(tiny_config, "coarse", gamma=0.0, gate_bias=2.0)
    assert start["fine_rate"] == 1.0                     # the gate starts always open
    assert end["fine_rate"] <= 0.25
    assert end["accuracy"] >= 0.9 and skip_acc >= 0.9    # coarse state alone (through the sync) classifies


# --- feature extraction and cache --------------------------------------------------------------
@pytest.fixture(scope="module")
def backbones():
    torch.manual_seed(0)
    return create_coarse_cnn(), create_fine_cnn("resnet18")


class Counter:
    def __init__(self, *modules):
        self.frames = 0
        self.handles = [m.register_forward_hook(self) for m in modules]

    def __call__(self, module, args, out):
        self.frames += args[0].shape[0]

    def close(self):
        for h in self.handles:
            h.remove()


def test_extract_features_uses_the_runtime_preprocessing_and_pads_by_repetition(backbones, fake_videos):
    coarse, fine = backbones
    videos = fake_videos(3, lengths=[3, 1, 2])
    fs = extract_features(videos, coarse, fine, batch_size=4)
    assert fs.feat_c.shape == (3, 3, 1280) and fs.feat_f.shape == (3, 3, 512)
    assert fs.labels.tolist() == [0, 1, 0] and fs.lengths.tolist() == [3, 1, 2]
    assert fs.mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert torch.equal(fs.feat_c[1, 2], fs.feat_c[1, 0]) and torch.equal(fs.feat_f[2, 2], fs.feat_f[2, 1])
    pre = Preprocessor(PreprocessSpec(sizes=(224, 112)))
    frame = videos[2][0][1]
    x = pre(frame)
    with torch.no_grad():
        ref_c = coarse.eval()(torch.from_numpy(x[112].copy()))[0]
        ref_f = fine.eval()(torch.from_numpy(x[224].copy()))[0]
    torch.testing.assert_close(fs.feat_c[2, 1], ref_c, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fs.feat_f[2, 1], ref_f, rtol=1e-4, atol=1e-5)


def test_feature_cache_is_reused_and_invalidated(backbones, fake_videos, tmp_path, caplog):
    coarse, fine = backbones
    fine = copy.deepcopy(fine)
    videos = fake_videos(2, lengths=[2, 1])
    count = Counter(coarse, fine)
    first = extract_features(videos, coarse, fine, batch_size=8, cache_dir=tmp_path)
    assert count.frames == 2 * 3
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("liteeval-") and files[0].suffix == ".pt"
    torch.load(str(files[0]), weights_only=True)

    again = extract_features(videos, coarse, fine, batch_size=8, cache_dir=tmp_path)
    assert count.frames == 6                                   # no backbone call the second time
    for a, b in zip(first, again):
        assert torch.equal(a, b)

    original = fine.trunk[0].weight.detach().clone()
    with torch.no_grad():                                      # other weights -> other key -> recomputed
        fine.trunk[0].weight.mul_(1.01)
    extract_features(videos, coarse, fine, batch_size=8, cache_dir=tmp_path)
    assert count.frames == 12 and len(list(tmp_path.iterdir())) == 2

    victim = files[0]
    with torch.no_grad():
        fine.trunk[0].weight.copy_(original)
    victim.write_bytes(b"damaged")                             # a damaged cache is recomputed, with a warning
    fs = extract_features(videos, coarse, fine, batch_size=8, cache_dir=tmp_path)
    assert count.frames == 18 and "ignoring LiteEval features cache" in caplog.text and len(list(tmp_path.iterdir())) == 2
    torch.testing.assert_close(fs.feat_f, first.feat_f)
    count.close()


def test_dataset_fingerprint_from_file_list(tmp_path, fake_videos):
    videos = fake_videos(2)
    for i in range(2):
        (tmp_path / ("v%d.mp4" % i)).write_bytes(b"x" * (10 + i))
    videos.samples = [(str(tmp_path / ("v%d.mp4" % i)), i) for i in range(2)]
    a = dataset_fingerprint(videos)
    assert a.startswith("files:") and videos.reads == 0       # no decoding needed
    (tmp_path / "v1.mp4").write_bytes(b"y" * 99)
    assert dataset_fingerprint(videos) != a
    del videos.samples
    assert dataset_fingerprint(videos).startswith("content:")


# --- BN recalibration --------------------------------------------------------------------------
def test_recalibrate_bn_changes_only_bn_buffers(backbones):
    cnn = copy.deepcopy(backbones[0]).train()
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    momenta = [m.momentum for m in cnn.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 3, 112, 112, generator=g) * 2 + 1 for _ in range(3)]
    assert recalibrate_bn(cnn, batches) == 12
    bn_buffers = {n for n, _ in cnn.named_buffers() if n.rsplit(".", 1)[1] in ("running_mean", "running_var", "num_batches_tracked")}
    after = cnn.state_dict()
    assert bn_buffers
    for k, v in after.items():
        if k in bn_buffers:
            if k.endswith("num_batches_tracked"):
                assert int(v) == 3, k
            else:
                assert not torch.equal(v, before[k]), k
        else:
            assert torch.equal(v, before[k]), k                # parameters untouched
    assert all(p.grad is None for p in cnn.parameters())
    assert cnn.training and [m.momentum for m in cnn.modules() if isinstance(m, torch.nn.BatchNorm2d)] == momenta
    # the first BN sees conv1 outputs: its running mean is their batch-averaged channel mean
    with torch.no_grad():
        conv_out = [cnn.trunk[0][0](b).mean(dim=(0, 2, 3)) for b in batches]
    torch.testing.assert_close(cnn.trunk[0][1].running_mean, torch.stack(conv_out).mean(0), rtol=1e-4, atol=1e-5)

    with pytest.raises(DataError, match="no frames"):
        recalibrate_bn(cnn, [])
    for k, v in cnn.state_dict().items():                      # failed recalibration restores the statistics
        assert torch.equal(v, after[k]), k


# --- train_liteeval end to end (cached features) ----------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory, fake_videos, tiny_config):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("liteeval")
    cfg = tiny_config()
    train_set, val_set = fake_videos(4, lengths=[2, 1, 2, 2]), fake_videos(2, seed=1)
    kw = dict(epochs=2, batch_size=2, lr=1e-2, cache_dir=root / "cache", seed=3)
    res = train_liteeval(cfg, train_set, val_set, out=root / "ck.pt", **kw)
    yield dict(root=root, cfg=cfg, train=train_set, val=val_set, kw=kw, res=res)
    torch.set_num_threads(threads)


def test_train_liteeval_writes_a_complete_weights_only_checkpoint(trained):
    res, root = trained["res"], trained["root"]
    assert res.checkpoint == root / "ck.pt" and res.best_checkpoint == root / "ck.best.pt"
    assert res.epochs == 2 and res.global_step == 4 and len(res.history) == 2
    assert set(res.history[-1]["val"]) >= {"accuracy", "fine_rate"} and res.best_accuracy is not None
    ck = torch.load(str(root / "ck.pt"), weights_only=True)
    assert ck["family"] == "liteeval" and ck["labels"] == ["a", "b"]
    assert (ck["coarse_arch"], ck["fine_arch"]) == ("mobilenet_v2", "resnet18")
    assert ck["config"]["model"]["fine_hidden"] == 32 and ck["config"]["model"]["labels"] == ["a", "b"]
    assert ck["config"]["train"]["fine_fraction_target"] == 0.1 and ck["config"]["train"]["lam"] == 2.0
    assert ck["config"]["preprocess"]["sizes"] == (224, 112) or ck["config"]["preprocess"]["sizes"] == [224, 112]
    prefixes = {k.split(".")[0] for k in ck["model"]}
    assert prefixes == {"head", "coarse_cnn", "fine_cnn"}
    # adapt_bn (default without weight files): backbone BN statistics are those of the training frames
    assert ck["model"]["coarse_cnn.trunk.0.1.running_mean"].abs().sum() > 0
    assert ck["model"]["fine_cnn.trunk.1.running_var"].sub(1).abs().sum() > 0
    torch.load(str(root / "ck.best.pt"), weights_only=True)


def test_load_liteeval_checkpoint_rebuilds_the_trained_model(trained):
    res, root = trained["res"], trained["root"]
    model = load_liteeval_checkpoint(root / "ck.pt")
    assert not model.training and model.config == res.model.config
    for k, v in res.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    # the checkpoint's backbones are the ones the cached features came from
    fs = extract_features(trained["val"], model.coarse_cnn, model.fine_cnn, cache_dir=root / "cache")
    fresh = extract_features(trained["val"], model.coarse_cnn, model.fine_cnn)
    torch.testing.assert_close(fs.feat_f, fresh.feat_f)
    with torch.no_grad():
        a = model.head(fs.feat_c, fs.feat_f)
        b = res.model.head(fs.feat_c, fs.feat_f)
    assert torch.equal(a["logits"], b["logits"])


def test_train_liteeval_resume_matches_the_uninterrupted_run(trained):
    root, kw = trained["root"], dict(trained["kw"])
    kw["epochs"] = 1
    train_liteeval(trained["cfg"], trained["train"], trained["val"], out=root / "part.pt", **kw)
    kw["epochs"] = 2
    res = train_liteeval(trained["cfg"], trained["train"], trained["val"], out=root / "part.pt",
                         resume=root / "part.pt", **kw)
    assert res.global_step == trained["res"].global_step
    ref = trained["res"].model.state_dict()
    for k, v in res.model.state_dict().items():
        assert torch.equal(v, ref[k]), k


def test_train_liteeval_errors(trained, tiny_config, fake_videos, tmp_path):
    cfg, tr = trained["cfg"], trained["train"]
    with pytest.raises(ConfigError, match="3 classes"):
        train_liteeval(tiny_config(num_classes=3), tr, out=tmp_path / "x.pt", epochs=1, batch_size=2)
    with pytest.raises(ConfigError, match="labels differ"):
        train_liteeval(tiny_config(labels=["b", "a"]), tr, out=tmp_path / "x.pt", epochs=1, batch_size=2)
    with pytest.raises(DataError, match="classes differ"):
        train_liteeval(cfg, tr, fake_videos(2, classes=("a", "c")), out=tmp_path / "x.pt", epochs=1, batch_size=2)
    with pytest.raises(ConfigError, match="batch size 1"):
        train_liteeval(cfg, tr, out=tmp_path / "x.pt", epochs=1, batch_size=1)
    with pytest.raises(DataError, match="empty"):
        train_liteeval(cfg, fake_videos(0), out=tmp_path / "x.pt", epochs=1, batch_size=2)
    with pytest.raises(CheckpointError, match="another model configuration.*fine_hidden"):
        train_liteeval(tiny_config(fine_hidden=48), tr, out=tmp_path / "x.pt", epochs=1, batch_size=2,
                       resume=trained["root"] / "ck.pt")
    torch.save({"format": "edgevid.train/1", "model": {}}, str(tmp_path / "generic.pt"))
    with pytest.raises(CheckpointError, match="not an edgevid LiteEval checkpoint: it names no model family"):
        load_liteeval_checkpoint(tmp_path / "generic.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_liteeval_checkpoint(tmp_path / "absent.pt")
    ck = torch.load(str(trained["root"] / "ck.pt"), weights_only=True)
    del ck["model"]["head.classifier.bias"]
    torch.save(ck, str(tmp_path / "cut.pt"))
    with pytest.raises(CheckpointError, match="missing keys head.classifier.bias"):
        load_liteeval_checkpoint(tmp_path / "cut.pt")
    bad = fake_videos(2)
    bad.items[1] = (np.zeros((2, 32, 32), np.uint8), 1)
    with pytest.raises(DataError, match="video 1 .*uint8 \\[T,H,W,3\\]"):
        extract_features(bad, *[torch.nn.Identity()] * 2)


# --- end-to-end mode ---------------------------------------------------------------------------
def test_end_to_end_training_updates_backbones(tmp_path, fake_videos, tiny_config):
    videos = fake_videos(2, lengths=[1, 1])
    res = train_liteeval(tiny_config(), videos, out=tmp_path / "e2e.pt", epochs=1, batch_size=2, lr=1e-3,
                         end_to_end=True, adapt_bn=False, seed=0)
    torch.manual_seed(0)
    init = {"coarse_cnn." + k: v for k, v in create_coarse_cnn().state_dict().items()}
    state = res.model.state_dict()
    assert not torch.equal(state["coarse_cnn.trunk.0.0.weight"], init["coarse_cnn.trunk.0.0.weight"])
    assert res.best_checkpoint is None                  # no validation set: no best checkpoint
    ck = torch.load(str(tmp_path / "e2e.pt"), weights_only=True)
    assert ck["config"]["train"]["end_to_end"] is True
    model = load_liteeval_checkpoint(tmp_path / "e2e.pt")
    assert torch.equal(model.fine_cnn.trunk[0].weight, res.model.fine_cnn.trunk[0].weight)
