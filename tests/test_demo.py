"""``edgevid demo`` (the README's main job) end to end, in its quick size, and its all-or-nothing output."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("cv2")


@pytest.fixture
def demo_out(quick_demo):
    return quick_demo


def test_demo_writes_report_video_and_bundle(demo_out):
    out, result = demo_out
    report = json.loads((out / "report.json").read_text())
    for key in ("accuracy", "fine_rate", "gmacs_per_frame", "gmacs_always_fine", "gmacs_saved", "fps", "latency_ms"):
        assert report[key] is not None, key
    assert 0.0 <= report["fine_rate"] <= 1.0
    assert report["gmacs_saved"] == pytest.approx(1 - report["gmacs_per_frame"] / report["gmacs_always_fine"])
    assert report["parity"]["ok"] and report["parity"]["gate_agreement"] == 1.0
    assert report["frames"] == report["data"]["stream_frames"] == report["accuracy"]["frames_scored"]
    from edgevid.bundle import load_bundle
    from edgevid.data.video import probe_video

    assert load_bundle(out / "bundle").family == "liteeval"
    assert probe_video(out / report["files"]["annotated_video"])["frames"] == report["frames"]
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == report["frames"]
    assert str(out / "report.json") in result.stdout  # it says where the report is
    # a quick run says it is a smoke test, in the report and in the summary
    assert report["quick"] is True and any("smoke test" in n for n in report["notes"])
    assert "accuracy is not meaningful" in result.stdout
    assert "queueing" in report["latency_measures"] and "includes queueing" in result.stdout


def test_demo_refuses_to_overwrite_without_asking(demo_out):
    out, _ = demo_out
    before = (out / "report.json").read_bytes()
    result = subprocess.run([sys.executable, "-m", "edgevid", "demo", "--quick", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--overwrite" in result.stderr
    assert (out / "report.json").read_bytes() == before


def test_failed_demo_leaves_nothing_behind(tmp_path, monkeypatch):
    from edgevid import demo

    def broken_stream(*args):
        raise RuntimeError("stream broke")

    monkeypatch.setattr(demo, "_stream", broken_stream)
    with pytest.raises(RuntimeError, match="stream broke"):
        demo.run_demo(tmp_path / "out", quick=True)
    assert list(tmp_path.iterdir()) == []  # no report, no bundle, no temporary folder


def test_score_stream_counts_segments_and_frames():
    from edgevid.data.scoring import score_stream

    segments = [{"start": 0, "end": 2, "label": 0, "class": "a"}, {"start": 2, "end": 4, "label": 1, "class": "b"}]
    preds = [{"frame_index": i, "label": c} for i, c in enumerate("baba")]
    score = score_stream(preds, segments)
    assert score["segment_accuracy"] == 0.5 and score["frame_accuracy"] == 0.5
    assert score["per_class_segment_accuracy"] == {"a": 1.0, "b": 0.0}


def test_prernn_quick_demo_end_to_end(tmp_path):
    """``--model prernn``: frame CNN pre-training, fc6 → SIH-LSTM, fine-tuning, export, parity, stream."""
    from edgevid.bundle import load_bundle
    from edgevid.demo import run_demo

    out = tmp_path / "out"
    report = run_demo(out, model="prernn", quick=True)
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    assert report["parity"]["ok"] and report["parity"]["steps"] == 300 and report["parity"]["top1_agreement"] == 1.0
    assert report["frames"] == report["data"]["stream_frames"] == report["accuracy"]["frames_scored"] == report["steps"]
    segments = report["accuracy"]["segments"]
    assert report["resets"] == segments - 1 and report["resets_by_cause"] == {"max_steps": segments - 1}
    assert set(report["gmacs_by_graph"]) == {"backbone", "step"} and report["gmacs_per_frame"] > 0
    assert report["training"]["cnn"]["frames"] > 0 and len(report["training"]["val_accuracy_per_epoch"]) == 2
    bundle = load_bundle(out / "bundle")
    assert bundle.family == "prernn" and bundle.policy["max_steps"] == report["settings"]["frames"]
    assert (out / "cnn.pth").is_file() and (out / "checkpoint.pt").is_file()


def test_slowfast_demo_streams_one_clip_per_segment(quick_slowfast_demo):
    out, result = quick_slowfast_demo
    report = json.loads((out / "report.json").read_text())
    segments, frames = report["accuracy"]["segments"], report["settings"]["frames"]
    assert report["model"] == "slowfast" and report["parity"]["ok"] and report["parity"]["top1_agreement"] == 1.0
    # every=T, pad=none: the first T-1 frames warm up, then one clip at the last frame of each segment
    assert report["clips"] == segments and report["warmup_frames"] == frames - 1
    assert report["frames"] == report["data"]["stream_frames"] - (frames - 1) == report["accuracy"]["frames_scored"]
    assert report["gmacs_per_clip"] > 0 and report["gmacs_per_frame"] == pytest.approx(
        report["gmacs_per_clip"] * segments / report["data"]["stream_frames"])
    assert report["training"]["epochs"] == 1 and report["fps"] > 0
    from edgevid.bundle import load_bundle

    bundle = load_bundle(out / "bundle")
    assert bundle.family == "slowfast" and bundle.policy["every"] == frames and bundle.policy["pad"] == "none"
    assert "clips           %d run" % segments in result.stdout


def test_prernn_demo_training_is_reproducible_from_the_seed(tmp_path):
    """The CNN's initial weights come from the seed too: two trainings give identical weights."""
    import torch

    from edgevid.demo import make_data
    from edgevid.demo.prernn import QUICK, train

    data = make_data(tmp_path / "data", QUICK, 0)
    for i in range(2):
        (tmp_path / str(i)).mkdir()
    runs = [train(tmp_path / str(i), data, QUICK, 0, False).model.state_dict() for i in range(2)]
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_demo_output_is_readable_by_others_as_the_umask_allows(demo_out):
    """mkstemp/mkdtemp make private temporaries; the demo's files and folders end with the umask's modes."""
    import os
    import stat

    from edgevid.fsutil import current_umask

    if os.name != "posix":
        pytest.skip("POSIX modes")
    out, _ = demo_out
    umask = current_umask()  # the demo subprocess inherited this test process's umask
    paths = [out] + list(out.rglob("*"))
    wrong = ["%s %o" % (p.relative_to(out.parent), stat.S_IMODE(p.stat().st_mode)) for p in paths
             if stat.S_IMODE(p.stat().st_mode) != (0o777 if p.is_dir() else 0o666) & ~umask]
    assert not wrong, wrong


def test_fusion_quick_demo_end_to_end(tmp_path):
    """``--model fusion``: a colour and a flow PreRNN, their fusion learned on the validation videos, one fused run
    scored per member and per weighting, each member alone for speed; the CLI summary shows them side by side."""
    from edgevid.bundle import load_bundle
    from edgevid.commands.demo import main as demo_main
    from edgevid.fusion.bundle import load_fusion

    out = tmp_path / "out"
    args = type("Args", (), dict(out=out, model="fusion", seed=0, quick=True, overwrite=False, json=False,
                                 precision=None, quiet=True))()
    assert demo_main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["members"]) == {"colour", "flow"} and set(report["fusion"]) == {"boost-u", "boost-c", "equal"}
    flow = load_bundle(out / "flow" / "bundle")
    assert flow.preprocess.flow == report["flow"] and load_bundle(out / "colour" / "bundle").preprocess.flow is None
    fusion = load_fusion(out / "fusion")
    assert [m.modality for m in fusion.members] == ["colour", "flow"] and fusion.flow == report["flow"]
    assert report["fusion"]["boost-u"]["theta"] == [round(float(x), 6) for x in fusion.weights.theta]
    assert report["frames"] == report["members"]["colour"]["accuracy"]["frames_scored"]
    assert report["fps"] > 0 and report["slowest_member_fps_alone"] > 0 and report["flow_ms_p50"] > 0
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == report["frames"] and set(lines[0]["members"]) == {"colour", "flow"}
    assert (out / "annotated.avi").stat().st_size > 0
