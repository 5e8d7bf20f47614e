"""The committed fixture bundles (tests/fixtures/bundles) and the numpy references of the runtime tests stay
true to the torch builders in tests/helpers; the torch-free checks run everywhere, the others where torch is."""
from __future__ import annotations

import numpy as np
import pytest

from edgevid.bundle import load_bundle
from tests.helpers import bundles, tiny_clip, tiny_liteeval, tiny_prernn

ALL = list(bundles.LITEEVAL.values()) + list(bundles.PRERNN.values()) + [bundles.CLIP]


def test_fixtures_load_and_stay_small():
    for name in ALL:
        bundle = load_bundle(bundles.committed(name))  # schema, files and sha256 checked
        assert bundle.meta.get("created") == "tests/fixtures/make_fixtures.py", name
    total = sum(p.stat().st_size for p in bundles.FIXTURES.rglob("*") if p.is_file())
    assert total < 1_000_000, "the committed fixture bundles grew to %d bytes" % total


def random_feeds(specs, rng):
    return {t.name: rng.standard_normal(t.shape).astype(np.float32) for t in specs}


def run_graph(path, feeds):
    from edgevid.backends import open_session

    with open_session(path, "ort") as session:
        return {k: np.array(v) for k, v in session.infer(feeds).items()}


@pytest.mark.parametrize("name", ALL)
def test_committed_graphs_equal_a_fresh_export(name, tmp_path):
    """Exported again from the builders, each graph computes what the committed one does (rerun
    tests/fixtures/make_fixtures.py after changing a builder)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    committed = load_bundle(bundles.committed(name))
    family, _, variant = name.partition("-")
    fresh = {"liteeval": lambda: tiny_liteeval.make_bundle(tmp_path / "b", variant),
             "prernn": lambda: tiny_prernn.make_bundle(tmp_path / "b", variant),
             "clip": lambda: tiny_clip.make_bundle(tmp_path / "b")}[family]()
    assert committed.policy == fresh.policy and committed.labels == fresh.labels
    rng = np.random.default_rng(0)
    for role, graph in committed.graphs.items():
        assert graph.inputs == fresh.graph(role).inputs and graph.outputs == fresh.graph(role).outputs, role
        feeds = random_feeds(graph.inputs, rng)
        want, got = run_graph(fresh.graph_path(role), feeds), run_graph(committed.graph_path(role), feeds)
        for key in want:
            np.testing.assert_allclose(got[key], want[key], atol=1e-6, err_msg="%s %s %s" % (name, role, key))


def test_committed_weights_are_the_builders():
    pytest.importorskip("torch")
    for stored, built in ((tiny_liteeval.load_weights(), tiny_liteeval.fixture_weights()),
                          (tiny_clip.load_weights(), tiny_clip.module_weights())):
        assert sorted(stored) == sorted(built)
        assert all(np.array_equal(stored[k], built[k]) for k in built)
    for cell in tiny_prernn.CELLS:
        stored, built = tiny_prernn.load_weights(cell), tiny_prernn.module_weights(cell)
        assert sorted(stored) == sorted(built) and all(np.array_equal(stored[k], built[k]) for k in built)


def frames_like(rng, n, size):
    return [rng.random((1, 3, size, size)).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize("gate", tiny_liteeval.GATE_MODES)
def test_liteeval_numpy_reference_equals_the_torch_one(gate):
    pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    inputs = [{112: a, 224: b} for a, b in zip(frames_like(rng, 12, 112), frames_like(rng, 12, 224))]
    options = dict(max_steps=5, fine_cap=2, fine_window=4)
    ours = tiny_liteeval.Reference(gate, **options).run(inputs, reset_at=(7,))
    torch_ = tiny_liteeval.Reference(gate, backend="torch", **options).run(inputs, reset_at=(7,))
    assert [path for _, path in ours] == [path for _, path in torch_]
    np.testing.assert_allclose(np.stack([x for x, _ in ours]), np.stack([x for x, _ in torch_]), atol=1e-5)


@pytest.mark.parametrize("cell", tiny_prernn.CELLS)
def test_prernn_numpy_reference_equals_the_torch_one(cell):
    pytest.importorskip("torch")
    inputs = frames_like(np.random.default_rng(2), 20, 224)
    ours = tiny_prernn.Reference(cell).run(inputs, reset_at=(9,))
    torch_ = tiny_prernn.Reference(cell, backend="torch").run(inputs, reset_at=(9,))
    for a, b in zip(ours, torch_):
        assert set(a) == set(b)
        for key in a:
            np.testing.assert_allclose(a[key], b[key], atol=1e-5)


def test_clip_numpy_reference_equals_the_torch_one():
    pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    windows = [[rng.random((3, tiny_clip.S, tiny_clip.S)).astype(np.float32) for _ in range(tiny_clip.T)]
               for _ in range(3)]
    np.testing.assert_allclose(np.stack(tiny_clip.clip_logits(windows)),
                               np.stack(tiny_clip.clip_logits(windows, backend="torch")), atol=1e-5)
