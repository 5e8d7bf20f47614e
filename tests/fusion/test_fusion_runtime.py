"""Fusion end to end on the committed tiny bundles (no torch): flow bundles and their flow stage, learn_fusion on
held-out videos, the fusion bundle's checks, and FusionRuntime's fused labels against each member run alone."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgevid.data.flow import FlowSpec, FlowStream
from edgevid.errors import ConfigError, DataError, ManifestError
from edgevid.fusion.bundle import MANIFEST, load_fusion, model_sha256
from edgevid.fusion.runtime import FusionRuntime
from edgevid.runtime.prediction import softmax
from edgevid.runtime.source import open_source
from edgevid.runtime.stream import StreamRuntime
from tests.helpers.bundles import CLIP, PRERNN, copy_bundle

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

LABELS = ["wave", "walk", "jump"]
SOURCE = "synthetic:seed=3,segments=2,frames=12,fps=10"
FLOW = {"method": "dis", "bound": 16.0, "size": 64}


def flow_copy(name, dest, flow=FLOW):
    """A copy of a fixture bundle declared a flow model (its graphs take flow images)."""
    path = copy_bundle(name, dest)
    manifest = json.loads((path / "bundle.json").read_text())
    manifest["preprocess"]["flow"] = flow
    (path / "bundle.json").write_text(json.dumps(manifest))
    return path


@pytest.fixture
def members(tmp_path):
    return {"colour": copy_bundle(PRERNN["lstm"], tmp_path / "colour"),
            "flow": flow_copy(PRERNN["gru"], tmp_path / "flow"),
            "clip": copy_bundle(CLIP, tmp_path / "clip")}


@pytest.fixture
def held_out(tmp_path):
    """Three classes of tiny videos that differ in brightness and motion."""
    from edgevid.data.video import write_video

    root = tmp_path / "held_out"
    rng = np.random.default_rng(0)
    for k, name in enumerate(LABELS):
        for v in range(3):
            base = rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)
            frames = [np.roll(base, (k + 1) * t, axis=1) // (k + 1) for t in range(10)]
            write_video(root / name / ("v%d.avi" % v), frames, fps=10.0)
    return root


def learn(members, held_out, out, names=("colour", "flow"), **options):
    pytest.importorskip("scipy")  # the LP; streaming and loading need numpy only
    from edgevid.fusion.learn import learn_fusion

    return learn_fusion([(n, members[n]) for n in names], held_out, out, **options)


def fusion_of(members, out, theta, names=("colour", "flow")):
    """A fusion bundle of ``members`` with the given weights, written without the LP (scipy) as learn_fusion writes
    it, and loaded back."""
    from edgevid.bundle import load_bundle
    from edgevid.fusion.bundle import FusionBundle, Member, check_members, member_path
    from edgevid.fusion.weights import Weights
    from edgevid.fsutil import write_json

    loaded = [Member(n, load_bundle(members[n]), member_path(out, members[n])) for n in names]
    flow = check_members(loaded)
    theta = np.asarray(theta, np.float64)
    fusion = FusionBundle(loaded, Weights(theta, "boost-u" if theta.ndim == 1 else "boost-c", None, "given"),
                          LABELS, flow)
    out.mkdir()
    write_json(out / MANIFEST, fusion.to_dict())
    return load_fusion(out)


def alone(bundle, source=SOURCE):
    """Each frame's probabilities from the bundle streamed alone (frame index -> p)."""
    return {p.frame_index: softmax(p.logits) for p in StreamRuntime(bundle).run(source)}


# flow bundles -------------------------------------------------------------------------------------
def test_a_flow_bundle_streams_on_the_flow_images_its_flow_stage_makes(members, tmp_path):
    stream = FlowStream(FlowSpec(**FLOW))
    with open_source(SOURCE) as src:
        frames = list(src)
    flow_frames = [type(f)(f.index, f.timestamp, stream(f.image), f.captured) for f in frames]
    colour_twin = copy_bundle(PRERNN["gru"], tmp_path / "twin")  # the same graphs, fed flow images by hand
    by_hand = {p.frame_index: p.logits for p in StreamRuntime(colour_twin).run(flow_frames)}
    runtime = StreamRuntime(members["flow"])
    preds = list(runtime.run(SOURCE))
    own = {p.frame_index: p.logits for p in preds}
    for p, f in zip(preds, frames):  # annotated on the camera's picture, not on the flow image
        np.testing.assert_array_equal(p.image, f.image)
    assert own.keys() == by_hand.keys() and len(own) == 24
    for i in own:
        np.testing.assert_allclose(own[i], by_hand[i], rtol=1e-5, atol=1e-6)
    assert "flow" in runtime.stats.to_dict()["stages_ms"]


def test_bad_flow_settings_in_a_bundle_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="flow method 'lucas-kanade'"):
        StreamRuntime(flow_copy(PRERNN["gru"], tmp_path / "f", {"method": "lucas-kanade", "bound": 16}))
    with pytest.raises(ConfigError, match="flow settings"):
        StreamRuntime(flow_copy(PRERNN["gru"], tmp_path / "f2", {"method": "dis", "speed": 3}))
    with pytest.raises(ManifestError, match="preprocessing entry"):
        StreamRuntime(flow_copy(PRERNN["gru"], tmp_path / "f3", "dis"))


# learning -----------------------------------------------------------------------------------------
def test_learn_fusion_writes_a_bundle_of_weights_that_sum_to_one(members, held_out, tmp_path):
    fusion = learn(members, held_out, tmp_path / "fz")
    saved = json.loads((tmp_path / "fz" / MANIFEST).read_text())
    theta = np.array(saved["weights"]["theta"])
    assert theta.shape == (2,) and (theta >= 0).all() and theta.sum() == pytest.approx(1.0)
    assert saved["flow"] == FLOW and [m["modality"] for m in saved["members"]] == ["colour", "flow"]
    assert saved["members"][0]["path"] == "../colour"  # relative: the folders travel together
    assert saved["held_out"]["videos"] == 9 and set(saved["held_out"]["accuracy"]) == {"colour", "flow", "fused"}
    assert "boost-c" in saved["held_out"]["compare"]
    loaded = load_fusion(tmp_path / "fz")
    np.testing.assert_allclose(loaded.weights.theta, fusion.weights.theta)
    assert [m.name for m in loaded.members] == ["colour", "flow"]


def test_the_held_out_scores_are_the_members_mean_probabilities_per_video(members, held_out):
    pytest.importorskip("scipy")
    from edgevid.fusion.bundle import FusionBundle, Member
    from edgevid.fusion.learn import held_out_videos, member_scores
    from edgevid.fusion.weights import Weights
    from edgevid.bundle import load_bundle

    colour = Member("colour", load_bundle(members["colour"]), "colour")
    clip = Member("clip", load_bundle(members["clip"]), "clip")
    videos, truth = held_out_videos(held_out, LABELS)
    assert len(videos) == 9 and sorted(set(truth.tolist())) == [0, 1, 2]
    fusion = FusionBundle([colour, clip], Weights(np.array([0.5, 0.5]), "boost-u", None, ""), LABELS, None)
    scores, unscored = member_scores(fusion, videos[:2])
    for v, path in enumerate(videos[:2]):
        expected = np.mean(list(alone(members["colour"], str(path)).values()), axis=0)
        np.testing.assert_allclose(scores[0][v], expected, rtol=1e-5, atol=1e-6)
        clip_alone = list(alone(members["clip"], str(path)).values())
        # frames after the clip member's first scores hold its latest: the mean weighs each clip by its frames
        assert len(clip_alone) > 0 and np.allclose(scores[1][v].sum(), 1.0)
    assert unscored == {"colour": 0, "clip": 0}


def test_members_must_share_labels_rate_and_flow(members, held_out, tmp_path):
    other = copy_bundle(PRERNN["vrnn"], tmp_path / "other")
    manifest = json.loads((other / "bundle.json").read_text())
    manifest["labels"] = ["a", "b", "c"]
    (other / "bundle.json").write_text(json.dumps(manifest))
    members["other"] = other
    with pytest.raises(ConfigError, match="different label sets"):
        learn(members, held_out, tmp_path / "fz", names=("colour", "other"))
    members["flow2"] = flow_copy(PRERNN["vrnn"], tmp_path / "flow2", dict(FLOW, bound=8.0))
    with pytest.raises(ConfigError, match="different flow settings"):
        learn(members, held_out, tmp_path / "fz", names=("flow", "flow2"))
    with pytest.raises(ConfigError, match="do not match the flow members' training"):
        learn(members, held_out, tmp_path / "fz", flow=dict(FLOW, method="farneback"))
    with pytest.raises(ConfigError, match="two or more"):
        learn(members, held_out, tmp_path / "fz", names=("colour",))
    assert not (tmp_path / "fz").exists()


def test_held_out_classes_the_members_do_not_know_are_refused(members, held_out, tmp_path):
    shutil.copytree(str(held_out / "walk"), str(held_out / "run"))
    with pytest.raises(DataError, match=r"\['run'\] are not among the members' labels"):
        learn(members, held_out, tmp_path / "fz")


# loading ------------------------------------------------------------------------------------------
def test_a_missing_or_changed_member_is_refused(members, tmp_path):
    fusion_of(members, tmp_path / "fz", [0.5, 0.5])
    shutil.move(str(members["flow"]), str(tmp_path / "elsewhere"))
    with pytest.raises(ManifestError, match="member 'flow' of fusion bundle .* is missing"):
        load_fusion(tmp_path / "fz")
    shutil.copytree(str(tmp_path / "elsewhere"), str(tmp_path / "fz" / "flow"))  # beside fusion.json: found there
    assert load_fusion(tmp_path / "fz").members[1].bundle.root == tmp_path / "fz" / "flow"
    shutil.rmtree(str(tmp_path / "fz" / "flow"))
    flow_copy(PRERNN["vrnn"], members["flow"])  # another model at the recorded place
    with pytest.raises(ManifestError, match="another model than the fusion was learned with"):
        load_fusion(tmp_path / "fz")


def test_an_engine_added_to_a_member_keeps_the_fusion_valid(members):
    from edgevid.bundle import load_bundle

    bundle = load_bundle(members["colour"])
    before = model_sha256(bundle)
    bundle.add_artifact("step", "report", "step.report.json", lambda p: p.write_text("{}"),
                        info={"precision": "fp32"})
    assert model_sha256(load_bundle(members["colour"])) == before


def test_edited_flow_settings_or_weights_are_refused(members, tmp_path):
    fusion_of(members, tmp_path / "fz", [0.5, 0.5])
    path = tmp_path / "fz" / MANIFEST
    saved = json.loads(path.read_text())
    path.write_text(json.dumps(dict(saved, flow=dict(FLOW, size=112))))
    with pytest.raises(ManifestError, match="do not match the flow members' training"):
        load_fusion(tmp_path / "fz")
    path.write_text(json.dumps(dict(saved, weights=dict(saved["weights"], theta=[0.9, 0.3]))))
    with pytest.raises(ManifestError, match="weights .* are malformed"):
        load_fusion(tmp_path / "fz")
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="cannot read"):
        load_fusion(tmp_path / "fz")


# streaming ----------------------------------------------------------------------------------------
def test_fused_labels_are_the_weighted_latest_member_scores(members, tmp_path):
    fusion = fusion_of(members, tmp_path / "fz", [0.3, 0.7], names=("colour", "clip"))
    colour, clip = alone(members["colour"]), alone(members["clip"])
    runtime = FusionRuntime(fusion)
    preds = list(runtime.run(SOURCE))
    assert [p.frame_index for p in preds] == sorted(colour)  # the colour member scores every frame
    latest_clip = None
    for p in preds:
        latest_clip = clip.get(p.frame_index, latest_clip)
        if latest_clip is None:  # the clip window is filling: the colour member alone
            assert p.members_ready == 1 and list(p.members) == ["colour"]
            expected = colour[p.frame_index]
        else:
            assert p.members_ready == 2 and p.members["clip"]["fresh"] == (p.frame_index in clip)
            expected = 0.3 * colour[p.frame_index] + 0.7 * latest_clip
        np.testing.assert_allclose(p.logits, expected, rtol=1e-5, atol=1e-6)
        assert p.class_index == int(np.argmax(expected)) and p.label == LABELS[p.class_index] and p.path == "fused"
        contributions = sum(m["contribution"] for m in p.members.values())
        assert contributions == pytest.approx(p.score)
    stats = runtime.stats.to_dict()
    assert stats["members"]["colour"]["frames"] == 24 and stats["members"]["clip"]["frames"] == len(clip)
    assert set(stats["sessions"]) == {"colour/backbone", "colour/step", "clip/clip"}


def test_a_flow_member_streams_in_the_fusion_as_it_does_alone(members, tmp_path):
    fusion = fusion_of(members, tmp_path / "fz", [0.5, 0.5])
    flow_alone = alone(members["flow"])
    preds = list(FusionRuntime(fusion, pipelined=False).run(SOURCE))
    assert len(preds) == 24
    for p in preds:
        np.testing.assert_allclose(p.member_scores["flow"], flow_alone[p.frame_index], rtol=1e-5, atol=1e-6)
    line = json.dumps(preds[-1].to_dict())
    assert '"members"' in line and '"contribution"' in line


def test_options_no_member_takes_are_refused(members, tmp_path):
    fusion = fusion_of(members, tmp_path / "fz", [0.5, 0.5])
    with pytest.raises(ConfigError, match="fine_cap applies to no member"):
        FusionRuntime(fusion, fine_cap=2)
    FusionRuntime(fusion, scene_cut=0.5)  # both PreRNN members take it


def test_boost_c_weights_fuse_each_class_with_its_own_member_weights(members, tmp_path):
    theta = np.array([[0.9, 0.2, 0.5], [0.1, 0.8, 0.5]])
    fusion = fusion_of(members, tmp_path / "fz", theta)
    colour, flow = alone(members["colour"]), alone(members["flow"])
    for p in FusionRuntime(fusion).run(SOURCE):
        expected = theta[0] * colour[p.frame_index] + theta[1] * flow[p.frame_index]
        np.testing.assert_allclose(p.logits, expected, rtol=1e-5, atol=1e-6)
        assert p.members["flow"]["weight"] == pytest.approx(theta[1, p.class_index])


def test_a_flow_members_scene_cuts_are_judged_on_the_camera_picture(members, tmp_path):
    """A PreRNN flow bundle with a scene-cut policy resets where the colour frames cut, not where the flow changes."""
    manifest = json.loads((members["flow"] / "bundle.json").read_text())
    manifest["policy"]["scene_cut"] = 0.05
    (members["flow"] / "bundle.json").write_text(json.dumps(manifest))
    colour = flow_copy(PRERNN["gru"], tmp_path / "twin")
    twin = json.loads((colour / "bundle.json").read_text())
    del twin["preprocess"]["flow"]
    twin["policy"]["scene_cut"] = 0.05
    (colour / "bundle.json").write_text(json.dumps(twin))
    source = "synthetic:seed=5,segments=4,frames=6,fps=10,clip=3"  # a cut every 3 frames
    resets = []
    for bundle in (members["flow"], colour):
        runtime = StreamRuntime(bundle)
        list(runtime.run(source))
        resets.append(runtime.stats.to_dict()["resets_by_cause"].get("scene_cut", 0))
    assert resets[0] == resets[1] > 0
