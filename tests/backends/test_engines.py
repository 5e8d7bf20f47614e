"""Engine naming, provenance and which engine a device may run (backends/engines.py): no TensorRT needed."""
from __future__ import annotations

import pytest

from edgevid.backends.engines import Device, engine_file, engine_info, mismatch, select_engine, stale
from edgevid.bundle import NewArtifact, load_bundle
from edgevid.errors import BuildError, EngineMismatchError
from tests.helpers.bundles import CLIP, copy_bundle

XAVIER = Device("8.5.2.2", "72", dla_cores=2, name="Xavier")
ORIN = Device("10.3.0.30", "87", dla_cores=2)


def _add_engine(bundle, role, precision, device, dla_core=None, source="abc"):
    info = engine_info(device, dla_core=dla_core, workspace_mib=1024, source_sha256=source)
    bundle.add_artifacts([NewArtifact(role, "engine", engine_file(role, precision, device, dla_core),
                                      lambda p: p.write_bytes(b"plan"), precision=precision, info=info)])


def test_names_carry_provenance():
    assert engine_file("fine_cnn", "int8", XAVIER) == "fine_cnn.int8.trt8.5.sm72.engine"
    assert engine_file("coarse_cnn", "fp16", ORIN, dla_core=1) == "coarse_cnn.fp16.trt10.3.sm87.dla1.engine"
    assert XAVIER.tag == "trt8.5.sm72" and ORIN.tag == "trt10.3.sm87"  # also the timing caches' (trtexec.py)
    with pytest.raises(ValueError):
        Device("8.5.2", "sm72")


def test_mismatch_reasons():
    def art(device, dla=None):
        from edgevid.spec import Artifact
        return Artifact("engine", "x.engine", "0" * 64, "fp16",
                        engine_info(device, dla_core=dla, workspace_mib=1, source_sha256="s"))

    assert mismatch(art(XAVIER), XAVIER) is None
    assert "TensorRT 8.5.2.2" in mismatch(art(XAVIER), ORIN)
    assert "SM 72" in mismatch(art(XAVIER), Device("8.5.2.2", "87"))
    assert "DLA core 1" in mismatch(art(XAVIER, 1), Device("8.5.2.2", "72", dla_cores=0))
    assert stale(art(XAVIER), "t") and not stale(art(XAVIER), "s")


def test_select_engine_for_this_device(tmp_path):
    bundle = load_bundle(copy_bundle(CLIP, tmp_path / "b"))
    role = bundle.rules.roles[0]
    with pytest.raises(BuildError, match="no fp16 engine") as e:
        select_engine(bundle, role, "fp16", XAVIER)
    assert "edgevid build" in str(e.value)
    _add_engine(bundle, role, "fp16", XAVIER)
    _add_engine(bundle, role, "fp16", ORIN)
    bundle = load_bundle(bundle.root)  # survives a reload
    assert select_engine(bundle, role, "fp16", ORIN).info["trt_version"] == "10.3.0.30"
    assert select_engine(bundle, role, "fp16", XAVIER).file.endswith("sm72.engine")
    with pytest.raises(EngineMismatchError, match="no fp16 engine") as e:
        select_engine(bundle, role, "fp16", Device("8.6.2.3", "87"))
    assert "rebuild on this device" in str(e.value).lower() and "TensorRT 8.5.2.2" in str(e.value)
    with pytest.raises(BuildError):
        select_engine(bundle, role, "fp16", XAVIER, dla_core=0)
