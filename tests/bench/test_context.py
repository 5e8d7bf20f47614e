"""Machine context: each reading or the reason it is unavailable; the matmul peak is the best measured figure."""
from __future__ import annotations

import pytest

from edgevid.bench import context

X86 = "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse avx2 fma avx512f\n\nprocessor\t: 1\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd asimddp fphp\nCPU implementer\t: 0x41\nCPU part\t: 0xd42\n"


def test_cpu_model_and_flags_from_cpuinfo(tmp_path):
    (tmp_path / "x86").write_text(X86)
    (tmp_path / "arm").write_text(ARM)
    x86 = context.cpu_info(tmp_path / "x86")
    assert x86["model"] == "Test CPU 9000" and x86["flags"] == ["avx2", "fma", "avx512f"]
    arm = context.cpu_info(tmp_path / "arm")
    assert arm["model"] == "arm implementer 0x41 part 0xd42" and arm["flags"] == ["asimd", "asimddp", "fphp"]
    missing = context.cpu_info(tmp_path / "none")
    assert missing["model"].startswith("unavailable: ") and missing["cores"] >= 1


def test_jetson_readings_fall_back_to_why(tmp_path, monkeypatch):
    assert "does not exist" in context.jetson_info(tmp_path / "nv_tegra_release")["not_a_jetson"]
    (tmp_path / "nv_tegra_release").write_text("# R35 (release), REVISION: 4.1\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvpmodel, jetson_clocks or dpkg-query
    info = context.jetson_info(tmp_path / "nv_tegra_release")
    assert info["l4t"] == "# R35 (release), REVISION: 4.1"
    assert info["power_mode"].startswith("unavailable: nvpmodel")
    assert info["clocks"].startswith("unavailable: jetson_clocks")
    assert info["jetpack"].startswith("unavailable: dpkg-query")


def test_library_versions_say_when_absent():
    versions = context.library_versions()
    assert set(versions) == set(context.LIBRARIES)
    import numpy

    assert versions["numpy"] == numpy.__version__


def test_matmul_peak_is_the_best_measured_figure():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    peak = context.matmul_peak(n=256, reps=2)
    figures = {"numpy": peak["numpy_gflops"], "onnxruntime": peak["onnxruntime_gflops"]}
    assert all(isinstance(v, float) and v > 0 for v in figures.values())
    assert peak["peak_gflops"] == max(figures.values()) and figures[peak["peak_by"]] == peak["peak_gflops"]
    assert context.ort_matmul_rate(128, "MatMulInteger", reps=1) > 0


def test_jetson_tools_are_read_when_present_and_their_failures_recorded(tmp_path, monkeypatch):
    (tmp_path / "nv_tegra_release").write_text("# R35\n")
    for name, body in (("nvpmodel", "echo 'NV Power Mode: MAXN'; echo 0"),
                       ("jetson_clocks", "echo 'needs root' >&2; exit 1")):
        tool = tmp_path / name
        tool.write_text("#!/bin/sh\n%s\n" % body)
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    info = context.jetson_info(tmp_path / "nv_tegra_release")
    assert info["power_mode"] == "NV Power Mode: MAXN\n0"
    assert info["clocks"] == "unavailable: jetson_clocks --show exited 1: needs root"
