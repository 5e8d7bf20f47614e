"""Bad input, broadly (hypothesis): any edit of a bundle.json (wrong types, missing keys, huge values, path tricks),
any source spec, any calibration recipe and bad values of `edgevid run`'s options end in an EdgevidError saying
what, why and what to do, never in another exception type."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgevid.bundle import load_bundle
from edgevid.errors import EdgevidError
from tests.helpers.bundles import CLIP, LITEEVAL, PRERNN, committed

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BUNDLES = [LITEEVAL["mixed"], PRERNN["lstm"], CLIP]

# values a hand edit or an attack puts into bundle.json
NASTY = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True),
    st.sampled_from(["", "../coarse_cnn.onnx", "/etc/passwd", "..", "a" * 5000, "fp64", "engine", "\x00", "~/x",
                     "coarse_cnn.onnx", "float16", "NCHW", "RGB", "edgevid.bundle/9"]),
    st.text(max_size=20), st.lists(st.integers(-3, 10**9), max_size=6), st.dictionaries(st.text(max_size=5),
                                                                                     st.integers(), max_size=3))


def paths(value, prefix=()):
    """Every key path into a JSON value (dict keys and list indices)."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, prefix + (i,))


def edited(data, path, value, delete):
    data = json.loads(json.dumps(data))
    if not path:
        return value
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


@pytest.fixture(scope="module")
def manifests():
    return {name: json.loads((committed(name) / "bundle.json").read_text()) for name in BUNDLES}


@SETTINGS
@given(data=st.data())
def test_any_edit_of_bundle_json_is_a_clear_error_or_a_valid_bundle(tmp_path_factory, manifests, data):
    name = data.draw(st.sampled_from(BUNDLES))
    manifest = manifests[name]
    path = data.draw(st.sampled_from(sorted(paths(manifest), key=str)))
    new = edited(manifest, path, data.draw(NASTY), data.draw(st.booleans()))
    root = tmp_path_factory.mktemp("b")
    for f in committed(name).iterdir():
        if f.is_file():
            shutil.copy(str(f), str(root / f.name))
    (root / "bundle.json").write_text(json.dumps(new))
    try:
        bundle = load_bundle(root)
        bundle.rules.check_policy(bundle.policy, {})  # what a run validates next, before any session
    except EdgevidError as e:
        assert e.what and str(e)


@SETTINGS
@given(spec=st.one_of(st.text(max_size=40), st.sampled_from(["synthetic:", "synthetic:seed=x", "synthetic:frames=-1",
                                                            "synthetic:segments=0", "synthetic:fps=0", "rtsp://",
                                                            "csi://a", "foo://bar", "a ! b", "/dev/video99", "-3",
                                                            "synthetic:clip=99,frames=4"])))
def test_any_source_spec_is_parsed_or_refused_with_a_source_error(spec):
    from edgevid.runtime.source import open_source, parse_spec

    try:
        kind, _ = parse_spec(spec)
        if kind == "synthetic":
            with open_source(spec) as src:
                next(iter(src), None)
    except EdgevidError as e:
        assert e.what


RECIPE_KEYS = ["family", "streams", "max_frames", "frames_per_stream", "name", "seed", "source", "sources", "every"]


@SETTINGS
@given(recipe=st.dictionaries(st.sampled_from(RECIPE_KEYS + ["x"]), NASTY, max_size=5))
def test_any_recipe_is_loaded_or_refused_with_a_calibration_error(recipe):
    from edgevid.errors import CalibrationError
    from edgevid.quant.recipe import load_recipe

    try:
        load_recipe(recipe)
    except CalibrationError as e:
        assert e.what


OPTIONS = {"--max-frames": st.integers(-5, 3), "--fps": st.one_of(st.floats(-10, 1e9), st.sampled_from([float("nan"), float("inf")])),
           "--fine-cap": st.integers(-3, 5), "--fine-window": st.integers(-3, 5), "--retries": st.integers(-3, 2)}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(["--max-frames", "--fps", "--fine-cap", "--fine-window", "--retries"]), data=st.data())
def test_bad_run_option_values_are_refused_with_their_exit_code(edgevid_cli, capsys, option, data):
    pytest.importorskip("onnxruntime")
    value = data.draw(OPTIONS[option])
    argv = ["run", str(committed(LITEEVAL["mixed"])), "--source", "synthetic:seed=1,segments=2,frames=4",
            "--max-frames", "2", "%s=%s" % (option, value)]
    try:
        code = edgevid_cli(argv)
    except SystemExit as e:  # argparse refusing the command line: its usage and exit code 2
        code = e.code
    err = capsys.readouterr().err
    assert isinstance(code, int) and "Traceback" not in err
    if code != 0:
        assert "error:" in err and code in (2, 8), (code, err)


def test_the_bundle_edit_property_sees_real_errors(tmp_path):
    """The property above is not vacuous: a plain type error in bundle.json is caught as a ManifestError."""
    from edgevid.errors import ManifestError

    root = tmp_path / "b"
    shutil.copytree(str(committed(LITEEVAL["mixed"])), str(root))
    data = json.loads((root / "bundle.json").read_text())
    data["roles"]["coarse_cnn"]["inputs"] = 7
    (root / "bundle.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError):
        load_bundle(Path(root))
