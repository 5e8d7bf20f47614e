"""--precision best: the fastest measured engine the quantize report allows (best.py). Timings here are inputs to
the choice logic; the measuring itself (trt_ops.time_engine) runs on a device only."""
from __future__ import annotations

import pytest

from edgevid.engine_build.best import choose, refusal, report_of
from tests.engine_build.conftest import add_quantized


def test_the_fastest_allowed_wins_and_int8_is_not_assumed_faster():
    precision, record = choose({"int8": 1.30, "fp16": 1.10, "fp32": 2.0}, {"int8": None, "fp16": None, "fp32": None})
    assert precision == "fp16" and record["slower_lower_precision"] == ["int8"]
    assert record["timings_ms"] == {"int8": 1.30, "fp16": 1.10, "fp32": 2.0} and record["refused"] == {}


def test_a_refused_precision_is_not_chosen_however_fast():
    precision, record = choose({"int8": 0.5, "fp16": 1.0, "fp32": 2.0}, {"int8": "missed targets", "fp16": None})
    assert precision == "fp16" and record["faster_but_refused"] == ["int8"]
    assert record["refused"] == {"int8": "missed targets"}


def test_a_tie_goes_to_the_higher_precision():
    assert choose({"int8": 1.0, "fp16": 1.0, "fp32": 1.0}, {})[0] == "fp32"
    assert choose({"int8": 1.0, "fp16": 1.0}, {})[0] == "fp16"


def test_nothing_allowed_is_a_bug_not_a_choice():
    with pytest.raises(ValueError):
        choose({"int8": 1.0}, {"int8": "no report"})


def test_what_the_report_allows(prernn_bundle):
    assert refusal(prernn_bundle, "backbone", "fp32") is None
    assert "has not made it" in refusal(prernn_bundle, "backbone", "int8")
    b = add_quantized(prernn_bundle, "int8", ["backbone"], kept={"step": "never INT8"})
    assert refusal(b, "backbone", "int8") is None
    assert report_of(b, "int8")["plans"]["int8-trt"]["plan"] == {"backbone": "int8"}
    assert "has not made it" in refusal(b, "step", "int8")


def test_a_report_that_missed_its_targets_refuses(prernn_bundle):
    b = add_quantized(prernn_bundle, "fp16", ["backbone", "step"], ok=False)
    assert refusal(b, "backbone", "fp16") == "the fp16 report missed its targets: top1_agreement"


def test_no_report_refuses(prernn_bundle):
    b = add_quantized(prernn_bundle, "fp16", ["backbone"])
    (b.root / "quantization" / "fp16.json").write_text("{}")  # in memory only: the report lost its plans
    assert "did not measure" in refusal(b, "backbone", "fp16")
    b.meta["precision"]["int8"] = {"roles": {"backbone": {"precision": "int8"}}}
    assert refusal(b, "backbone", "int8") == "no quantize report for int8 in the bundle"
