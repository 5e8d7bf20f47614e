"""Bundles for the build tests: committed fixture bundles, copied, with the artifacts quantize adds entered the way
quantize enters them. The plan reads only what bundle.json says of them (kind, precision, target, sha256,
provenance), so their content here is the FP32 graph's bytes; test_plan's slow test uses real quantize output."""
from __future__ import annotations

import json

import pytest

from edgevid.backends.engines import Device
from edgevid.bundle import NewArtifact, load_bundle
from edgevid.engine_build.plan import Caps
from tests.helpers.bundles import CLIP, LITEEVAL, PRERNN, copy_bundle

XAVIER = Device("8.5.2.2", "72", dla_cores=2, name="Xavier")
ORIN = Device("10.3.0.30", "87", dla_cores=2, name="Orin")
DESKTOP = Device("11.4.0.106", "90")  # no DLA
TRT8, TRT10, TRT11 = Caps.assumed("8.5.2"), Caps.assumed("10.3.0"), Caps.assumed("11.4.0")
CACHE_TEXT = "TRT-8502-EntropyCalibration2\nframe: 3c010a14\n"


def passed(ok=True):
    return {"top1_agreement": {"value": 1.0, "limit": 0.99, "ok": ok}}


def add_quantized(bundle, precision, roles, *, kept=None, ok=True):
    """Enter ``precision`` artifacts for ``roles`` as edgevid quantize does, its record and its JSON report."""
    new = []
    for role in roles:
        graph = bundle.graph(role)
        body = (bundle.root / graph.file).read_bytes()
        if precision == "int8":
            new.append(NewArtifact(role, "onnx", "%s.int8.trt.onnx" % role, lambda p, b=body: p.write_bytes(b),
                                   precision="int8", info={"target": "trt", "quantization": {"method": "entropy"},
                                                           "source_sha256": graph.sha256}))
            new.append(NewArtifact(role, "calibration_cache", "%s.calib.cache" % role,
                                   lambda p: p.write_text(CACHE_TEXT),
                                   info={"recipe": "t", "data_sha256": "d", "source_sha256": graph.sha256}))
        else:
            new.append(NewArtifact(role, "onnx", "%s.fp16.onnx" % role, lambda p, b=body: p.write_bytes(b),
                                   precision="fp16", info={"source_sha256": graph.sha256}))
    name = "int8-trt" if precision == "int8" else "fp16"
    report = {"precision": precision, "plans": {name: {"plan": {r: precision for r in roles}, "targets": passed(ok)}}}
    text = json.dumps(report)
    first = bundle.rules.roles[0]
    new.append(NewArtifact(first, "report", "quantization/%s.json" % precision, lambda p: p.write_text(text),
                           info={"precision": precision}))
    record = {"roles": {r: {"precision": precision, "files": []} for r in roles}}
    record["roles"].update({r: {"precision": "fp32", "kept": why} for r, why in (kept or {}).items()})
    bundle.meta.setdefault("precision", {})[precision] = record
    bundle.add_artifacts(new)
    return load_bundle(bundle.root)


@pytest.fixture
def prernn_bundle(tmp_path):
    return load_bundle(copy_bundle(PRERNN["lstm"], tmp_path / "prernn"))


@pytest.fixture
def liteeval_bundle(tmp_path):
    return load_bundle(copy_bundle(LITEEVAL["mixed"], tmp_path / "liteeval"))


@pytest.fixture
def clip_bundle(tmp_path):
    return load_bundle(copy_bundle(CLIP, tmp_path / "clip"))


@pytest.fixture
def quantized(prernn_bundle):
    """The PreRNN bundle with INT8 (backbone; the step kept by the rules) and FP16 (both roles) as quantize makes."""
    b = add_quantized(prernn_bundle, "int8", ["backbone"], kept={"step": "recurrent step: never INT8"})
    return add_quantized(b, "fp16", ["backbone", "step"])
