"""`edgevid run` on the committed tiny bundles of each family: run_stream (what the verb calls) and the verb."""
from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from edgevid.errors import ConfigError, ManifestError, SourceError
from edgevid.runtime.cli_run import format_prediction, run_stream
from tests.helpers import tiny_clip, tiny_liteeval, tiny_prernn
from tests.helpers.bundles import LITEEVAL, copy_bundle

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")


def edgevid(*args):
    return subprocess.run([sys.executable, "-m", "edgevid"] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=120)


def fine_steps_per_window(paths, window):
    return [sum(p == "fine" for p in paths[i:i + window]) for i in range(len(paths) - window + 1)]


# LiteEval -----------------------------------------------------------------------------------------
def test_json_lines_and_stats(make_bundle, video):
    bundle = make_bundle("mixed")
    lines, preds = [], []
    stats = run_stream(bundle.root, str(video), backend="ort", json_lines=True, emit=lines.append,
                       on_prediction=preds.append)
    assert len(lines) == len(preds) == stats["frames"] == 24
    first = json.loads(lines[0])
    assert set(first) == {"frame_index", "timestamp", "label", "class_index", "score", "path", "latency"}
    assert first["frame_index"] == 0
    assert stats["source"] == str(video) and stats["live"] is False and stats["pipelined"] is True
    assert {d["precision"] for d in stats["sessions"].values()} == {"fp32"}  # no precision: fp32 on ONNX Runtime
    json.dumps(stats)


@pytest.mark.parametrize("argv,precision", [([], None), (["--precision", "fp32"], "fp32"),
                                            (["--precision", "int8"], "int8")])
def test_the_verb_passes_no_precision_unless_asked(edgevid_cli, monkeypatch, tmp_path, argv, precision):
    """Without --precision each backend takes its own default (fp32 on ONNX Runtime; on TensorRT what edgevid
    build makes by default, tests/engine_build/test_one_rule.py); never a literal fp32 that TensorRT would need
    fp32 engines for."""
    from edgevid.runtime import cli_run

    seen = {}

    def run_stream(bundle, source, **options):
        seen.update(options)
        raise ConfigError("stop here", None, None)

    monkeypatch.setattr("edgevid.commands.run.run_stream", run_stream)
    assert edgevid_cli(["run", str(tmp_path), "--backend", "trt", "--source", "synthetic"] + argv) == 2
    assert seen["backend"] == "trt" and seen["precision"] == precision
    assert cli_run.run_stream.__kwdefaults__["precision"] is None  # the library's default is the same


def test_text_lines_max_frames_and_out_video(make_bundle, video, tmp_path):
    cv2 = pytest.importorskip("cv2")
    out = tmp_path / "annotated.avi"
    lines = []
    stats = run_stream(make_bundle("mixed").root, str(video), backend="ort", out_video=out, max_frames=7,
                       emit=lines.append)
    assert len(lines) == 7 and stats["frames"] == 7
    assert lines[0].startswith("#     0") and ("fine" in lines[0] or "coarse" in lines[0])
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 7
    assert [p.name for p in tmp_path.iterdir()] == ["annotated.avi"]
    assert not [t for t in threading.enumerate() if t.name.startswith("edgevid-")]


def test_step_fps_from_the_bundle_policy(video, tmp_path):
    from edgevid.bundle import load_bundle

    bundle = load_bundle(copy_bundle(LITEEVAL["mixed"], tmp_path / "bundle"))  # this test's own copy: it saves
    bundle.policy["step_fps"] = 2.0
    bundle.save()  # run_stream loads from disk
    stats = run_stream(bundle.root, str(video), backend="ort")
    assert stats["step_fps"] == 2.0 and stats["frames"] == 5  # 24 frames at 10 fps, one step per 0.5 s
    assert run_stream(bundle.root, str(video), backend="ort", fps=5.0)["frames"] == 12


def test_errors_surface_and_leave_no_video(make_bundle, tmp_path):
    root = make_bundle("mixed").root
    with pytest.raises(SourceError):
        run_stream(root, str(tmp_path / "missing.mp4"), out_video=tmp_path / "o.avi")
    with pytest.raises(ManifestError):
        run_stream(tmp_path / "no-bundle", "synthetic")
    with pytest.raises(ConfigError):
        run_stream(root, "x.mp4", max_frames=0)
    assert list(tmp_path.iterdir()) == []


def test_format_prediction_text():
    from edgevid.runtime.stream import Prediction

    line = format_prediction(Prediction(12, 1.2, "walk", 1, 0.873, "fine", 0.0412))
    assert line == "#    12     1.20s  walk             0.873  fine      41.2 ms"


@pytest.mark.parametrize("where", ["options", "bundle"])
def test_edgevid_run_fine_cap_engages(bundle_root, video, tmp_path, where):
    """The "fine" bundle's gate asks for the fine branch at every step, so every skip is the cap at work:
    from --fine-cap/--fine-window, or from the bundle's own policy when no option is given."""
    if where == "options":
        root, flags = bundle_root("fine"), ["--fine-cap", 2, "--fine-window", 5]
    else:
        from edgevid.bundle import load_bundle

        bundle = load_bundle(copy_bundle(LITEEVAL["fine"], tmp_path / "bundle"))
        bundle.policy.update(fine_cap=2, fine_window=5)
        bundle.save()
        root, flags = bundle.root, []
    result = edgevid("run", root, "--source", video, "--json", "--stats", tmp_path / "stats.json", *flags)
    assert result.returncode == 0, result.stderr
    paths = [json.loads(line)["path"] for line in result.stdout.splitlines()]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert len(paths) == stats["steps"] == 24
    assert max(fine_steps_per_window(paths, 5)) == 2  # never more than the cap in any 5 steps, and it is reached
    assert [i for i, p in enumerate(paths) if p == "fine"] == [0, 1, 5, 6, 10, 11, 15, 16, 20, 21]
    assert stats["fine_steps"] == 10 and stats["fine_capped"] == 14 > 0  # the cap turned 14 fine choices away


# PreRNN -------------------------------------------------------------------------------------------

def test_edgevid_run_on_a_prernn_bundle(prernn_root, video, tmp_path):
    root = prernn_root("lstm")
    result = edgevid("run", root, "--source", video, "--json", "--reset-every", 5, "--scene-cut", 0.5,
                     "--stats", tmp_path / "stats.json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 24 and {line["path"] for line in lines} == {"step"}
    assert lines[0]["label"] in tiny_prernn.LABELS
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["family"] == "prernn" and stats["resets_by_cause"].get("max_steps") == 4
    assert "24 frames" in result.stderr and "state resets" in result.stderr and "fine model" not in result.stderr

    text = edgevid("run", root, "--source", video, "--max-frames", 3, "--sequential")
    assert text.returncode == 0, text.stderr
    assert len(text.stdout.splitlines()) == 3 and " step " in text.stdout


def test_edgevid_run_refuses_liteeval_options_on_prernn(prernn_root, video):
    result = edgevid("run", prernn_root("gru"), "--source", video, "--fine-cap", 2)
    assert result.returncode == ConfigError.exit_code, result.stderr
    assert "fine_cap" in result.stderr and "Traceback" not in result.stderr


# SlowFast (the tiny clip model) -------------------------------------------------------------------
def test_edgevid_run_on_a_clip_bundle(clip_root, tmp_path, capsys, edgevid_cli):
    video = tiny_liteeval.write_video(tmp_path / "v.avi", frames=20)
    code = edgevid_cli(["run", str(clip_root), "--source", str(video), "--every", "4", "--smooth", "2",
                        "--sequential", "--backend", "ort"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 20 - (tiny_clip.T - 1)
    assert " clip " in lines[0] and " held " in lines[1]
    assert "4 clips run" in err and "GMACs per frame" in err and "n/a" not in err.split("latency")[0]
    code = edgevid_cli(["run", str(clip_root), "--source", str(video), "--pad", "repeat", "--json", "--max-frames", "3"])
    out, _ = capsys.readouterr()
    assert code == 0 and len(out.strip().splitlines()) == 3 and '"path": "clip"' in out.splitlines()[0]
    code = edgevid_cli(["run", str(clip_root), "--source", str(video), "--fine-cap", "2"])
    _, err = capsys.readouterr()
    assert code != 0 and "fine_cap" in err
