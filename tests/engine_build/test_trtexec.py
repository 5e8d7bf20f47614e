"""--print-trtexec: the build plan as trtexec lines, with no TensorRT installed (trtexec.py, commands/build.py)."""
from __future__ import annotations

import sys

from edgevid.engine_build.plan import make_plan
from edgevid.engine_build.trtexec import lines
from tests.engine_build.conftest import DESKTOP, ORIN, TRT8, TRT10, TRT11, XAVIER


def engine_lines(plan, root):
    return [line for line in lines(plan, root) if line.startswith("trtexec")]


def test_tensorrt_8_int8_from_qdq_with_fp16_and_the_timing_cache(quantized):
    root = quantized.root
    got = engine_lines(make_plan(quantized, "int8", XAVIER, TRT8, workspace_mib=2048), root)
    assert got[0] == ("trtexec --onnx=%s/backbone.int8.trt.onnx --saveEngine=%s/backbone.int8.trt8.5.sm72.engine "
                      "--int8 --fp16 --memPoolSize=workspace:2048M --timingCacheFile=%s/timing.trt8.5.sm72.cache"
                      % (root, root, root))
    assert got[1].startswith("trtexec --onnx=%s/step.onnx --saveEngine=%s/step.fp32.trt8.5.sm72.engine --memPool"
                             % (root, root))


def test_implicit_int8_from_the_cache_and_dla(quantized):
    got = engine_lines(make_plan(quantized, "int8", XAVIER, TRT8, calibration="cache", dla=0, roles=["backbone"]),
                       quantized.root)
    assert got == ["trtexec --onnx={0}/backbone.onnx --saveEngine={0}/backbone.int8.trt8.5.sm72.dla0.engine --int8 "
                   "--fp16 --calib={0}/backbone.calib.cache --useDLACore=0 --allowGPUFallback "
                   "--memPoolSize=workspace:1024M --timingCacheFile={0}/timing.trt8.5.sm72.cache".format(quantized.root)]


def test_a_cache_header_trtexec_would_discard_is_pointed_out(quantized):
    text = lines(make_plan(quantized, "int8", ORIN, TRT10, calibration="cache", roles=["backbone"]), quantized.root)
    assert ("# backbone int8: backbone.calib.cache starts with TRT-8502-EntropyCalibration2; trtexec takes it only "
            "as TRT-100300-EntropyCalibration2") in text[1]
    same = lines(make_plan(quantized, "int8", XAVIER, TRT8, calibration="cache", roles=["backbone"]), quantized.root)
    assert not any("starts with" in line for line in same)


def test_best_lists_what_is_no_candidate(quantized):
    text = lines(make_plan(quantized, "best", XAVIER, TRT8), quantized.root)
    assert any(line.startswith("# step int8: no candidate: the prernn rules keep it off int8") for line in text)


def test_tensorrt_11_is_strongly_typed_without_precision_flags(quantized):
    got = engine_lines(make_plan(quantized, "fp16", DESKTOP, TRT11), quantized.root)
    assert "--onnx=%s/backbone.fp16.onnx" % quantized.root in got[0] and "--stronglyTyped" in got[0]
    assert "--fp16" not in " ".join(got) and "--int8" not in " ".join(got)
    ten = engine_lines(make_plan(quantized, "fp16", ORIN, TRT10), quantized.root)
    assert "--fp16" in ten[0] and "--stronglyTyped" not in ten[0]


def test_feeds_have_no_trtexec_equivalent_and_notes_are_comments(quantized):
    from edgevid.bundle import NewArtifact, load_bundle

    graph = quantized.graph("backbone")
    quantized.add_artifacts([NewArtifact("backbone", "calibration", "calibration/backbone.npz",
                                         lambda p: p.write_bytes(b"x"),
                                         info={"recipe": "t", "data_sha256": "d", "source_sha256": graph.sha256})])
    text = lines(make_plan(load_bundle(quantized.root), "int8", XAVIER, TRT8, calibration="feeds"), quantized.root)
    assert "# backbone int8: calibration from the stored feeds has no trtexec equivalent" in "\n".join(text)
    assert any(line.startswith("# step fp32: the prernn rules keep it off int8") for line in text)


def test_paths_with_spaces_are_quoted(tmp_path):
    from edgevid.bundle import load_bundle
    from tests.helpers.bundles import PRERNN, copy_bundle

    bundle = load_bundle(copy_bundle(PRERNN["lstm"], tmp_path / "my bundle"))
    got = engine_lines(make_plan(bundle, "fp32", XAVIER, TRT8), bundle.root)
    assert "--onnx='%s/backbone.onnx'" % bundle.root in got[0]


def test_the_cli_prints_without_tensorrt(quantized, edgevid_cli, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as on a machine without it, even where it is installed
    assert edgevid_cli(["build", str(quantized.root), "--print-trtexec", "--trt-version", "8.5.2.2", "--sm", "7.2",
                        "--precision", "int8"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# %s, TensorRT 8.5.2.2, SM 72: 2 engine(s)" % quantized.root)
    assert sum(line.startswith("trtexec ") for line in out) == 2


def test_the_cli_refuses_half_a_device_and_bad_values(quantized, edgevid_cli, capsys):
    assert edgevid_cli(["build", str(quantized.root), "--print-trtexec", "--sm", "72"]) == 2
    assert "--trt-version and --sm go together" in capsys.readouterr().err
    assert edgevid_cli(["build", str(quantized.root), "--print-trtexec", "--trt-version", "eight", "--sm", "72"]) == 2
    assert edgevid_cli(["build", str(quantized.root), "--trt-version", "8.5.2", "--sm", "72"]) == 2
    assert "for --print-trtexec only" in capsys.readouterr().err


def test_without_tensorrt_and_without_a_device_given_it_says_how(quantized, edgevid_cli, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert edgevid_cli(["build", str(quantized.root), "--print-trtexec"]) == 3
    err = capsys.readouterr().err
    assert "--trt-version and --sm to print without it" in err and "never installed from pip" in err
