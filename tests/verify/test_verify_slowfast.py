"""SlowFast parity: verify_slowfast on real clips, and StreamRuntime against torch on the same windows."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

from edgevid.errors import ExportError  # noqa: E402

LABELS = ["a", "b", "c"]
T, S, EVERY = 8, 32, 3


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from edgevid.export.slowfast import export_slowfast
    from edgevid.models.slowfast import create_slowfast_preset

    torch.manual_seed(0)
    model = create_slowfast_preset("tiny", num_classes=3, labels=LABELS).eval()
    with torch.no_grad():  # random BatchNorm statistics, so the logits are not all alike
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bundle = export_slowfast(model, tmp_path_factory.mktemp("sfv") / "bundle", size=S, resize_short=40,
                                 policy={"step_fps": 10.0, "every": EVERY})
    finally:
        torch.set_num_threads(n)
    return model, bundle


def stream_frames(n, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (48, 56, 3), dtype=np.uint8)
    return [np.roll(base, 3 * i, axis=1) for i in range(n)]  # moving content: every window differs


def test_verify_slowfast_on_stream_clips(exported, one_torch_thread):
    from edgevid.verify import describe_slowfast_report, verify_slowfast

    model, bundle = exported
    report = verify_slowfast(model, bundle, stream_frames(20), clips=None, stride=4)
    assert report["ok"] and report["starts"] == [0, 4, 8, 12] and report["top1_agreement"] == 1.0
    assert report["max_abs"] < 1e-4 and report["ref_max_abs"] > 0
    assert "parity OK" in describe_slowfast_report(report)
    short = verify_slowfast(model, bundle, stream_frames(5), clips=2)  # shorter than a window: cycled
    assert short["ok"] and short["clips"] == 1


def test_verify_slowfast_refuses_other_bundles_and_bad_frames(exported, tmp_path):
    from edgevid.verify import clip_windows, verify_slowfast

    model, bundle = exported
    with pytest.raises(ExportError, match="no frames"):
        verify_slowfast(model, bundle, [])
    with pytest.raises(ExportError, match="preprocessed frames"):
        verify_slowfast(model, bundle, np.zeros((4, 3, 16, 16), np.float32))
    with pytest.raises(ExportError, match="not a slowfast bundle|cannot verify"):
        verify_slowfast(model, tmp_path / "missing", stream_frames(8))
    frames = np.arange(3, dtype=np.float32)[:, None, None, None] * np.ones((3, 3, 2, 2), np.float32)
    starts, clips = clip_windows(frames, 4, 2, 4, None)
    assert starts == [0] and clips[0][0, 0, :, 0, 0].tolist() == [0, 1, 2, 0]


def test_stream_runtime_matches_torch_on_the_same_windows(exported, one_torch_thread):
    from edgevid.preprocess import Preprocessor
    from edgevid.runtime.source import Frame
    from edgevid.runtime.stream import StreamRuntime

    model, bundle = exported
    images = stream_frames(20)
    frames = [Frame(i, i / 10.0, img, 0.0) for i, img in enumerate(images)]
    with StreamRuntime(bundle, "ort", pipelined=False) as rt:
        preds = list(rt.run(frames))
    clips = [p for p in preds if p.path == "clip"]
    assert [p.frame_index for p in clips] == list(range(T - 1, 20, EVERY))
    pre = Preprocessor(bundle.preprocess)
    x = np.concatenate([pre(img)[S].copy() for img in images])  # [F,3,S,S]
    with torch.no_grad():
        for p in clips:
            window = x[p.frame_index - T + 1:p.frame_index + 1]
            want = model(torch.from_numpy(np.ascontiguousarray(window.transpose(1, 0, 2, 3)[None])))[0].numpy()
            np.testing.assert_allclose(np.asarray(p.logits).reshape(-1), want, atol=1e-4)


def test_cli_bad_inputs_fail_cleanly_or_are_counted(exported, tmp_path, capsys, edgevid_cli):
    import json

    from edgevid.errors import CheckpointError
    from edgevid.models.slowfast import create_slowfast_preset
    from edgevid.models.slowfast_weights import key_map, save_slowfast_checkpoint

    model, bundle = exported
    # foreign (PyTorchVideo-layout) weights of the tiny preset exported as if they were 'small'
    names = key_map(model, "pytorchvideo")
    torch.save({names[k]: v for k, v in model.state_dict().items()}, str(tmp_path / "pv.pt"))
    (tmp_path / "labels.txt").write_text("\n".join(LABELS))
    code = edgevid_cli(["export", "slowfast", "--checkpoint", str(tmp_path / "pv.pt"), "--preset", "small",
                        "--labels", str(tmp_path / "labels.txt"), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == CheckpointError.exit_code and "does not fit this SlowFast" in err and "Traceback" not in err

    # a checkpoint of another depth than the bundle's graph: verify reports the mismatch, exit code 1
    other = create_slowfast_preset("tiny", num_classes=3, labels=LABELS, stage_blocks=(2, 1, 1, 1))
    save_slowfast_checkpoint(other, tmp_path / "other.pt")
    source = "synthetic:seed=2,segments=1,frames=16,fps=10"
    assert edgevid_cli(["verify", str(bundle.root), "--checkpoint", str(tmp_path / "other.pt"), "--source", source,
                        "--frames", "16"]) == 1
    assert "parity MISMATCH" in capsys.readouterr().out

    # a source slower than the window needs (5 fps for 10 fps slots): missed slots repeat the latest frame
    stats = tmp_path / "stats.json"
    assert edgevid_cli(["run", str(bundle.root), "--source", "synthetic:seed=2,segments=1,frames=12,fps=5",
                        "--stats", str(stats), "--sequential"]) == 0
    s = json.loads(stats.read_text())
    assert s["repeated_slots"] == 11 and s["clips"] >= 1 and "Traceback" not in capsys.readouterr().err
