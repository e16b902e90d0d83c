"""Quality checks (xai_core.quality): known answers for faithfulness, sanity, axioms and localisation."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tiny_models import make_bundle, tiny_cnn

from xai_core.errors import InvalidParameterError
from xai_core.methods import Target, explain
from xai_core.models.bundle import PREPROCESSINGS, ModelBundle
from xai_core.quality import (
    axiom_for,
    cascading_randomization,
    check_axiom,
    deletion_insertion,
    leaderboard,
    metric_frame,
    pointing_game,
    relevance_mass,
    trust_report,
    worst_images,
)
from xai_core.quality.faithfulness import auc, baseline_images, map_ranks, random_ranks
from xai_core.quality.localisation import default_margin, widen
from xai_core.quality.sanity import randomized_bundle, spearman, weighted_layers
from xai_core.viz.quality_charts import (
    DATASET_METHOD,
    QUALITY_METHOD,
    curves_chart,
    dataset_chart,
    leaderboard_chart,
    sanity_chart,
    selected_method,
    selected_worst_images,
)

SIDE = 8


# --------------------------------------------------------------------------- a hand-built linear model
@pytest.fixture(scope="module")
def linear() -> tuple[ModelBundle, np.ndarray]:
    """logit_0 = w · (pixels / 255), logit_1 = 0: the true contribution of pixel p to class 0 is w_p x_p."""
    w = np.random.default_rng(3).normal(size=(SIDE * SIDE, 1)).astype(np.float32)

    def factory():
        inp = tf.keras.Input((SIDE, SIDE, 1))
        out = tf.keras.layers.Dense(2, activation="softmax", name="predictions")(tf.keras.layers.Flatten()(inp))
        model = tf.keras.Model(inp, out)
        model.get_layer("predictions").set_weights([np.concatenate([w, np.zeros_like(w)], axis=1),
                                                    np.zeros(2, np.float32)])
        return model

    bundle = ModelBundle.create(factory, name="linear", preprocessing=PREPROCESSINGS["unit"],
                                class_names=["signal", "none"])
    return bundle, w[:, 0].reshape(SIDE, SIDE)


@pytest.fixture(scope="module")
def linear_images() -> np.ndarray:
    return (np.random.default_rng(5).random((6, SIDE, SIDE, 1)) * 255).astype(np.float32)


def test_true_signal_beats_random_on_deletion_and_insertion(linear, linear_images):
    """Removing the largest true contributions first is the fastest way down (and revealing them first the fastest
    way up): with the logit as score the map's curve is below (above) the random one at every step."""
    bundle, w = linear
    truth = w[None] * linear_images[..., 0] / 255.0
    targets = np.zeros(len(linear_images), int)
    for score in ("logit", "probability"):
        c = deletion_insertion(bundle, linear_images, truth, targets, steps=16, deletion_baseline="black",
                               insertion_baseline="black", score=score)
        dm, dr = c.scores[("deletion", "map")], c.scores[("deletion", "random")]
        im, ir = c.scores[("insertion", "map")], c.scores[("insertion", "random")]
        assert np.all(dm <= dr + 1e-5) and np.all(im >= ir - 1e-5)
        assert np.all(c.auc("deletion") < c.auc("deletion", "random"))
        assert np.all(c.auc("insertion") > c.auc("insertion", "random"))
    # the logit curve's end points are known exactly: the full image and the all-black image (logit 0)
    logit = (truth.reshape(len(truth), -1)).sum(axis=1)
    c = deletion_insertion(bundle, linear_images, truth, targets, steps=4, deletion_baseline="black",
                           insertion_baseline="black", score="logit")
    np.testing.assert_allclose(c.scores[("deletion", "map")][:, 0], logit, rtol=1e-4)
    np.testing.assert_allclose(c.scores[("deletion", "map")][:, -1], 0.0, atol=1e-5)
    np.testing.assert_allclose(c.scores[("insertion", "random")][:, -1], logit, rtol=1e-4)
    # an anti-map (the true signal reversed) is worse than random
    anti = deletion_insertion(bundle, linear_images, -truth, targets, steps=16, deletion_baseline="black")
    assert np.all(anti.auc("deletion") > anti.auc("deletion", "random"))


def _reference_curves(bundle, images, maps, targets, steps, order_ranks, del_base, ins_base):
    """One image, one step at a time: the obvious (slow) implementation."""
    n, h, w, _ = images.shape
    out = {"deletion": np.zeros((n, steps + 1)), "insertion": np.zeros((n, steps + 1))}
    for i in range(n):
        order = np.argsort(order_ranks[i])  # pixel indices, first removed first
        for k in range(steps + 1):
            count = int(np.rint(k * h * w / steps))
            chosen = np.zeros(h * w, bool)
            chosen[order[:count]] = True
            chosen = chosen.reshape(h, w, 1)
            deleted = np.where(chosen, del_base[i], images[i])
            inserted = np.where(chosen, images[i], ins_base[i])
            out["deletion"][i, k] = bundle.predict(deleted[None])[0, targets[i]]
            out["insertion"][i, k] = bundle.predict(inserted[None])[0, targets[i]]
    return out


def test_batched_curves_equal_one_at_a_time_reference(tiny, images):
    two = images[:2]
    maps = explain(tiny, "gradient", two, Target.of_class(1)).maps[:, 0]
    targets = np.array([1, 1])
    c = deletion_insertion(tiny, two, maps, targets, steps=5, batch_size=7)
    del_base, ins_base = baseline_images(two, "black"), baseline_images(two, "blur")
    for order, ranks in (("map", map_ranks(maps, 0)), ("random", random_ranks(2, 16 * 16, 0))):
        ref = _reference_curves(tiny, two, maps, targets, 5, ranks, del_base, ins_base)
        for curve in ("deletion", "insertion"):
            np.testing.assert_allclose(c.scores[(curve, order)], ref[curve], rtol=1e-5, atol=1e-6)
    frame = c.frame()
    assert set(frame.columns) == {"image_id", "curve", "order", "step", "fraction", "score"}
    assert len(frame) == 2 * 2 * 2 * 6


def test_map_ranks_break_ties_randomly_not_in_raster_order():
    ranks = map_ranks(np.zeros((1, 8, 8)), seed=0)[0]
    assert sorted(ranks) == list(range(64))
    assert ranks[:8].mean() > 8, "a flat map must not remove the top row first"
    peak = np.zeros((1, 8, 8))
    peak[0, 5, 6] = 1.0
    assert map_ranks(peak)[0, 5 * 8 + 6] == 0


def test_auc_and_bad_input():
    np.testing.assert_allclose(auc(np.array([[1.0, 1.0, 1.0], [1.0, 0.5, 0.0]]), np.array([0, 0.5, 1.0])),
                               [1.0, 0.5])
    with pytest.raises(InvalidParameterError, match="baseline"):
        baseline_images(np.zeros((1, 4, 4, 3)), "purple")


def test_deletion_rejects_mismatched_maps_and_bad_settings(tiny, images):
    with pytest.raises(InvalidParameterError, match="one \\(H, W\\) map"):
        deletion_insertion(tiny, images[:2], np.zeros((2, 8, 8)))
    with pytest.raises(InvalidParameterError, match="Steps"):
        deletion_insertion(tiny, images[:2], np.zeros((2, 16, 16)), steps=1)
    with pytest.raises(InvalidParameterError, match="class"):
        deletion_insertion(tiny, images[:2], np.zeros((2, 16, 16)), targets=[0, 9])


# --------------------------------------------------------------------------- sanity
def test_randomized_bundle_keeps_lower_layers_and_changes_the_top(tiny, images):
    layers = weighted_layers(tiny)
    assert layers[-1] == "conv1" and len(layers) == 3
    same = randomized_bundle(tiny, [])
    try:
        np.testing.assert_allclose(same.predict(images), tiny.predict(images), rtol=1e-5, atol=1e-6)
    finally:
        same.close()
    top = randomized_bundle(tiny, layers[:1], seed=1)
    try:
        with tiny.scope():
            original = {layer.name: layer.get_weights() for layer in tiny.model.layers}
        with top.scope():
            new = {layer.name: layer.get_weights() for layer in top.model.layers}
        np.testing.assert_array_equal(new["conv1"][0], original["conv1"][0])
        assert not np.allclose(new[layers[0]][0], original[layers[0]][0])
        assert np.all(new[layers[0]][1] == 0), "biases re-initialised to zero"
    finally:
        top.close()


def test_spearman():
    a = np.arange(16.0).reshape(1, 4, 4)
    np.testing.assert_allclose(spearman(a, a), [1.0])
    np.testing.assert_allclose(spearman(a, -a), [-1.0])
    np.testing.assert_allclose(spearman(a, -a, absolute=True), [1.0])
    np.testing.assert_allclose(spearman(a, np.zeros_like(a)), [0.0])


def test_randomising_all_weights_decorrelates_gradient_maps(tiny, images):
    explain(tiny, "gradient", images, Target.predicted())  # build the original's analyzer first
    n_ops = len(tiny.graph.get_operations())
    result = cascading_randomization(tiny, "gradient", images, seed=0)
    assert len(tiny.graph.get_operations()) == n_ops, "randomised models live in their own graphs"
    summary = result.summary()
    assert list(summary["randomised"]) == [0, 1, 2, 3]
    assert summary["mean"].iloc[0] == pytest.approx(1.0)
    assert result.final_mean < 0.3, summary
    assert not result.insensitive
    assert set(result.frame.columns) == {"step", "layer", "randomised", "image", "rank_corr"}
    assert len(result.frame) == 4 * len(images)
    again = cascading_randomization(tiny, "gradient", images, seed=0)
    assert again is result, "each (model, method, images) check runs once"


def test_input_method_is_flagged_insensitive(tiny, images):
    """The 'Input' reference map is the image itself: no randomisation changes it."""
    result = cascading_randomization(tiny, "input", images[:3], max_steps=2)
    assert result.insensitive and result.final_mean == pytest.approx(1.0)
    assert list(result.summary()["randomised"]) == [0, 1, 3], "max_steps keeps the last (all layers) step"
    assert "insensitive to the model" in result.verdict


# --------------------------------------------------------------------------- axioms
def test_axiom_mapping():
    assert axiom_for("gradient") is None and axiom_for("gradcam") is None
    assert axiom_for("integrated_gradients").name == "completeness"
    assert axiom_for("lrp.epsilon").name == "conservation"
    assert axiom_for("lrp", {"rule": "Z"}).name == "conservation"
    assert axiom_for("lrp", {"rule": "Alpha1Beta0"}) is None


def test_integrated_gradients_completeness_within_tolerance(tiny, images):
    targets = tiny.predict(images).argmax(1)
    maps = explain(tiny, "integrated_gradients", images, Target.predicted(), {"steps": 64}).maps
    frame = check_axiom(tiny, "integrated_gradients", images, maps, targets, {"steps": 64})
    assert len(frame) == len(images) and frame["passed"].all(), frame
    assert (frame["tolerance"] == 0.05).all()
    # a map that is half as large breaks completeness: the check can fail
    broken = check_axiom(tiny, "integrated_gradients", images, maps / 2, targets, {"steps": 64})
    assert not broken["passed"].any()
    np.testing.assert_allclose(broken["rel_error"], 0.5, atol=0.05)


def test_lrp_conservation_holds_without_biases(tiny_nobias, images):
    targets = tiny_nobias.predict(images).argmax(1)
    maps = explain(tiny_nobias, "lrp.epsilon", images, Target.predicted(), {"epsilon": 1e-9}).maps
    frame = check_axiom(tiny_nobias, "lrp.epsilon", images, maps, targets, {"epsilon": 1e-9})
    assert frame["passed"].all(), frame
    logits = tiny_nobias.logits(tiny_nobias.preprocess(images))
    np.testing.assert_allclose(frame["expected"], logits[np.arange(len(images)), targets], rtol=1e-5)


def test_deeplift_completeness_when_registered(tiny, images):
    from xai_core.methods import REGISTRY

    if "deeplift" not in REGISTRY:
        pytest.skip("DeepLIFT is not registered")
    targets = tiny.predict(images).argmax(1)
    maps = explain(tiny, "deeplift", images, Target.predicted()).maps
    frame = check_axiom(tiny, "deeplift", images, maps, targets)
    assert frame["axiom"].eq("completeness").all() and frame["passed"].all(), frame


def test_trust_report_table(tiny, images):
    targets = tiny.predict(images[:3]).argmax(1)
    maps = explain(tiny, "integrated_gradients", images[:3], Target.predicted()).maps
    report = trust_report(tiny, "integrated_gradients", images[:3], maps, targets, image_ids=["a", "b", "c"],
                          steps=8)
    table = report.table()
    assert list(table["image"]) == ["a", "b", "c"]
    assert {"deletion AUC ↓", "insertion AUC ↑", "beats random", "relative error", "within 5%"} <= set(table.columns)
    assert "Completeness" in report.verdict()
    plain = trust_report(tiny, "gradient", images[:1], maps[:1], targets[:1], steps=4)
    assert plain.axiom is None and "relative error" not in plain.table().columns


# --------------------------------------------------------------------------- localisation
@pytest.fixture(scope="module")
def shapes():
    from xai_core.data.demo import load_demo_set

    s = load_demo_set("shapes", "test")
    return s.images[:12], s.masks[:12]


def test_pointing_game_and_relevance_mass_known_answers(shapes):
    _, masks = shapes
    mask_maps = masks.astype(np.float32)
    inverted = (~masks).astype(np.float32)
    np.testing.assert_array_equal(pointing_game(mask_maps, masks), 1.0)
    np.testing.assert_array_equal(pointing_game(inverted, masks), 0.0)
    np.testing.assert_allclose(relevance_mass(mask_maps, masks), 1.0)
    np.testing.assert_allclose(relevance_mass(inverted, masks), 0.0)
    assert np.all(pointing_game(np.zeros_like(mask_maps), masks) == 0.0), "a flat map points nowhere"
    assert np.all(np.isnan(relevance_mass(-mask_maps, masks))), "no positive relevance: undefined"
    # a single peak just outside the object: a miss without margin, a hit within the margin
    m = masks[0]
    ring = widen(m[None], 1)[0] & ~m
    r, c = np.argwhere(ring)[0]
    peak = np.zeros_like(mask_maps[:1])
    peak[0, r, c] = 1.0
    assert pointing_game(peak, m[None], margin=0)[0] == 0.0
    assert pointing_game(peak, m[None], margin=2)[0] == 1.0
    assert default_margin(64) == 4 and default_margin(224) == 15


def test_relevance_mass_of_uniform_map_is_the_object_area(shapes):
    _, masks = shapes
    np.testing.assert_allclose(relevance_mass(np.ones(masks.shape), masks), masks.mean(axis=(1, 2)))


# --------------------------------------------------------------------------- data-set scale, leaderboard
def test_metric_frame_long_form_and_progress(tiny, images):
    masks = np.zeros((len(images), 16, 16), bool)
    masks[:, 4:12, 4:12] = True
    calls = []
    frame = metric_frame(tiny, ["gradient", "random", "integrated_gradients"], images,
                         ["pointing_game", "relevance_mass", "deletion_auc", "insertion_gain", "axiom_error"],
                         masks=masks, steps=4, progress=lambda d, t: calls.append((d, t)))
    assert list(frame.columns) == ["method", "image_id", "metric", "value"]
    counts = frame.groupby(["method", "metric"]).size()
    assert counts.loc[("gradient", "deletion_auc")] == len(images)
    assert ("gradient", "axiom_error") not in counts.index and counts.loc[("integrated_gradients", "axiom_error")]
    assert calls[-1][0] == calls[-1][1] and all(a[0] <= b[0] for a, b in itertools.pairwise(calls))
    with pytest.raises(InvalidParameterError, match="masks"):
        metric_frame(tiny, ["gradient"], images, ["pointing_game"])


def test_leaderboard_and_worst_images_follow_the_metric_direction():
    frame = pd.DataFrame({
        "method": ["gradient"] * 3 + ["random"] * 3, "image_id": list("abc") * 2,
        "metric": "deletion_auc", "value": [0.1, 0.5, 0.2, 0.4, 0.6, np.nan]})
    board = leaderboard(frame, "deletion_auc")
    assert list(board["method"]) == ["gradient", "random"], "lower deletion AUC is better"
    assert board.loc[1, "n"] == 2
    assert list(worst_images(frame, "gradient", "deletion_auc", 2)["image_id"]) == ["b", "c"]
    mass = frame.assign(metric="relevance_mass")
    assert list(leaderboard(mass, "relevance_mass")["method"]) == ["random", "gradient"]
    assert list(worst_images(mass, "gradient", "relevance_mass", 1)["image_id"]) == ["a"]


def test_dataset_metrics_on_demo_shapes():
    from xai_core.data.dataset import demo_dataset
    from xai_core.models.demo import load_demo_model
    from xai_core.quality import dataset_metrics, localisation_leaderboard

    bundle = load_demo_model("shapes_cnn")
    frame = dataset_metrics(bundle, demo_dataset("shapes"), ["gradcam"], ["relevance_mass", "deletion_gain"],
                            n=4, seed=1, steps=5)
    assert frame["image_id"].str.startswith("shapes/test/").all() and frame["image_id"].nunique() == 4
    loc = localisation_leaderboard(bundle, ["gradcam", "random"], n=6)
    board = leaderboard(loc, "relevance_mass")
    assert board.set_index("method").loc["gradcam", "mean"] > board.set_index("method").loc["random", "mean"]
    digits = load_demo_model("digits_cnn")
    with pytest.raises(InvalidParameterError, match="shapes"):
        localisation_leaderboard(digits, ["gradient"], n=2)


# --------------------------------------------------------------------------- charts and selections
def test_selection_to_method_and_worst_images():
    frame = pd.DataFrame({"method": ["gradient"] * 3, "image_id": ["a", "b", "c"], "metric": "relevance_mass",
                          "value": [0.9, 0.1, 0.5]})
    event = {"selection": {DATASET_METHOD: [{"method": "gradient"}]}}
    assert selected_method(event, DATASET_METHOD) == "gradient"
    assert selected_worst_images(event, frame, "relevance_mass", k=2) == ["b", "c"]
    assert selected_worst_images({"selection": {}}, frame, "relevance_mass") == []
    assert selected_method(None) is None
    assert selected_method({"selection": {QUALITY_METHOD: [{"method": "a"}, {"method": "lrp.z"}]}}) == "lrp.z"


def test_charts_carry_named_selections():
    board = leaderboard(pd.DataFrame({"method": ["gradient", "random"], "image_id": ["a", "a"],
                                      "metric": "pointing_game", "value": [1.0, 0.0]}), "pointing_game")
    spec = leaderboard_chart(board).to_dict()
    assert QUALITY_METHOD in str(spec) and "Pointing game" in str(spec)
    assert DATASET_METHOD in str(dataset_chart(board).to_dict())
    sanity = pd.DataFrame({"step": [0, 1], "layer": ["original", "predictions"], "randomised": [0, 1],
                           "image": [0, 0], "rank_corr": [1.0, 0.1]})
    assert "0.5" in str(sanity_chart(sanity, 0.5).to_dict())
    curves = pd.DataFrame({"image_id": "a", "curve": ["deletion", "insertion"], "order": "map", "step": 0,
                           "fraction": 0.0, "score": [0.9, 0.1]})
    assert "deletion" in str(curves_chart(curves).to_dict())


def test_swish_model_clone_for_sanity(images):
    """Cloning works for any activation (the randomised copy is rebuilt from the model's config)."""
    swish = make_bundle(lambda: tiny_cnn(activation="swish", seed=4), "tiny-swish-q")
    clone = randomized_bundle(swish, [])
    try:
        np.testing.assert_allclose(clone.predict(images), swish.predict(images), rtol=1e-5, atol=1e-6)
    finally:
        clone.close()
