"""Dataset Explorer core (xai_core.analysis.explore): each view keeps its promise.

Confusion counts are scikit-learn's, a clicked cell gives exactly its images by confidence, maximally activating
images are the top-k of the real activations, receptive-field boxes hold exactly the pixels a unit depends on,
deep dream raises its target, t-SNE keeps classes apart.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import confusion_matrix
from sklearn.neighbors import KNeighborsClassifier

from xai_core.analysis.dataset_pass import dataset_pass
from xai_core.analysis.explore import activations as act
from xai_core.analysis.explore.dream import MAX_STEPS, affine_inverse, dream
from xai_core.analysis.explore.embedding import FRAME_COLUMNS, check_perplexity, tsne
from xai_core.analysis.explore.metrics import (
    Predictions,
    cell_indices,
    confusion_frame,
    overall_accuracy,
    per_class_table,
    scores_frame,
    selected_cell_indices,
)
from xai_core.data.dataset import demo_dataset, model_labels
from xai_core.errors import DatasetError, InvalidParameterError
from xai_core.models.bundle import PREPROCESSINGS, ModelBundle
from xai_core.models.demo import load_demo_model
from xai_core.viz.explore_charts import (
    CONFUSION_SELECTION,
    TSNE_BRUSH,
    TSNE_PICK,
    confusion_chart,
    metrics_chart,
    selected_cell,
    tsne_chart,
    tsne_selection,
)

LAYERS = ("conv3", "pool2", "dense1")


@pytest.fixture(scope="module")
def digits():
    return load_demo_model("digits_cnn")


@pytest.fixture(scope="module")
def dset():
    return demo_dataset("digits", "test")


@pytest.fixture(scope="module")
def dpass(digits, dset):
    return dataset_pass(digits, dset, LAYERS)


@pytest.fixture(scope="module")
def pred(digits, dset, dpass) -> Predictions:
    labels, _ = model_labels(dset, digits.class_names)
    return Predictions.from_pass(dpass, labels, digits.class_names, dset.ids)


def _params(spec: dict) -> list[dict]:
    return spec.get("params", []) + [p for layer in spec.get("layer", []) for p in layer.get("params", [])]


# ------------------------------------------------------------------------------------------- metrics
def _toy() -> Predictions:
    probs = np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.2, 0.7, 0.1], [0.3, 0.1, 0.6], [0.55, 0.45, 0.0],
                      [0.1, 0.8, 0.1], [0.7, 0.2, 0.1]])
    labels = np.array([0, 1, 1, 2, 1, -1, 1])  # image 5 unlabelled
    return Predictions.from_arrays(np.arange(7) * 10, labels, probs, ["a", "b", "c"])


def test_confusion_counts_equal_scikit_learn_on_the_demo_pass(pred, dpass, dset):
    df = confusion_frame(pred)
    k = len(pred.class_names)
    assert len(df) == k * k
    mine = df.pivot(index="true_index", columns="predicted_index", values="count").to_numpy()
    expected = confusion_matrix(dset.labels[dpass.index], dpass.predicted, labels=np.arange(k))
    np.testing.assert_array_equal(mine, expected)
    assert mine.sum() == len(dset)
    row_share = df.groupby("true_index")["share"].sum().to_numpy()
    np.testing.assert_allclose(row_share, 1.0)
    assert overall_accuracy(pred) == pytest.approx(np.trace(expected) / expected.sum())
    assert overall_accuracy(pred) > 0.95, "the demo CNN is 99.7 % accurate on its test set"


def test_per_class_table_and_scores():
    p = _toy()
    table = per_class_table(p)
    # labelled: (0→0), (1→0), (1→1), (2→2), (1→0), (1→0)  → class b: recall 1/4, precision 1/1
    b = table.set_index("class").loc["b"]
    assert b["recall"] == pytest.approx(0.25) and b["precision"] == pytest.approx(1.0) and b["support"] == 4
    a = table.set_index("class").loc["a"]
    assert a["precision"] == pytest.approx(1 / 4) and a["recall"] == pytest.approx(1.0)
    assert overall_accuracy(p) == pytest.approx(3 / 6)
    scores = scores_frame(p)
    assert list(scores["correct"]) == [True, False, True, True, False, False, False]
    assert scores.loc[5, "true"] == "" and np.isnan(scores.loc[5, "true_probability"])
    assert scores.loc[1, "true_probability"] == pytest.approx(0.4)
    assert {"p(a)", "p(b)", "p(c)"} <= set(scores.columns)


def test_unlabelled_data_cannot_have_a_confusion_matrix():
    p = Predictions.from_arrays([0, 1], [-1, -1], [[0.5, 0.5], [0.2, 0.8]], ["x", "y"])
    with pytest.raises(DatasetError, match="label"):
        confusion_frame(p)


def test_cell_selection_gives_exactly_the_cell_images_by_confidence():
    p = _toy()
    # true b predicted a: rows 1 (0.6), 4 (0.55), 6 (0.7) → dataset indices 60, 10, 40
    np.testing.assert_array_equal(cell_indices(p, 1, 0), [60, 10, 40])
    event = {"selection": {CONFUSION_SELECTION: [{"true_index": 1, "predicted_index": 0}]}}
    cell, ids = selected_cell_indices(p, event)
    assert cell == (1, 0)
    np.testing.assert_array_equal(ids, [60, 10, 40])
    assert selected_cell_indices(p, {"selection": {}})[0] is None
    assert len(cell_indices(p, 2, 1)) == 0


def test_cell_selection_on_the_demo_pass(pred):
    for t, q in [(3, 3), (8, 1)]:
        ids = cell_indices(pred, t, q)
        rows = np.flatnonzero((pred.labels == t) & (pred.predicted == q))
        assert set(ids) == set(pred.index[rows])
        conf = pred.confidence[np.searchsorted(pred.index, ids)]
        assert np.all(np.diff(conf) <= 0), "most confident first"


def test_ties_keep_dataset_order():
    p = Predictions.from_arrays([5, 3, 9], [0, 0, 0], [[0.8, 0.2], [0.8, 0.2], [0.9, 0.1]], ["a", "b"])
    np.testing.assert_array_equal(cell_indices(p, 0, 0), [9, 5, 3])


# ------------------------------------------------------------------------------------------- charts
def test_confusion_chart_has_named_cell_selection_and_counts(pred):
    df = confusion_frame(pred)
    spec = confusion_chart(df).to_dict()
    sel = [p for p in _params(spec) if p["name"] == CONFUSION_SELECTION]
    assert sel and sel[0]["select"]["fields"] == ["true_index", "predicted_index"]
    assert any(layer["mark"]["type"] == "text" for layer in spec["layer"])
    data = spec["datasets"][next(iter(spec["datasets"]))]
    assert len(data) == 100


def test_selected_cell_parsing():
    assert selected_cell(None) is None
    assert selected_cell({"selection": {CONFUSION_SELECTION: []}}) is None
    assert selected_cell({"selection": {CONFUSION_SELECTION: [{"true_index": 2, "predicted_index": 5}]}}) == (2, 5)


def test_tsne_chart_and_selection_translation():
    frame = pd_frame()
    spec = tsne_chart(frame).to_dict()
    names = {p["name"]: p["select"] for p in _params(spec)}
    assert names[TSNE_PICK]["type"] == "point" and names[TSNE_PICK]["fields"] == ["index"]
    assert names[TSNE_BRUSH]["type"] == "interval"
    assert spec["encoding"]["shape"]["field"] == "result"
    picked = tsne_selection({"selection": {TSNE_PICK: [{"index": 30}], TSNE_BRUSH: {}}}, frame)
    np.testing.assert_array_equal(picked, [30])
    brushed = tsne_selection({"selection": {TSNE_PICK: [], TSNE_BRUSH: {"x": [0.5, 2.5], "y": [-1, 1]}}}, frame)
    np.testing.assert_array_equal(brushed, [10, 20])  # x in [0.5, 2.5] and y in [-1, 1]
    assert len(tsne_selection(None, frame)) == 0


def pd_frame():
    import pandas as pd

    return pd.DataFrame({"index": [0, 10, 20, 30], "x": [0.0, 1.0, 2.0, 3.0], "y": [0.0, 0.5, -0.5, 0.0],
                         "true": [0, 1, 1, 0], "predicted": [0, 1, 0, 0], "correct": [True, True, False, True],
                         "true_name": ["a", "b", "b", "a"], "predicted_name": ["a", "b", "a", "a"],
                         "confidence": [0.9, 0.8, 0.6, 0.7]})


def test_metrics_chart_has_three_metrics_per_class():
    table = per_class_table(_toy())
    spec = metrics_chart(table).to_dict()
    data = spec["datasets"][next(iter(spec["datasets"]))]
    assert len(data) == 9 and {r["metric"] for r in data} == {"precision", "recall", "f1"}


# ------------------------------------------------------------------------------------------- t-SNE
def test_tsne_frame_and_classes_stay_apart(pred, dpass):
    emb = tsne(dpass.layers["dense1"].full, pred, perplexity=20, seed=0)
    assert tuple(emb.frame.columns) == FRAME_COLUMNS
    assert len(emb.frame) == len(pred.index) and not emb.subsampled and emb.dims == 50
    np.testing.assert_array_equal(emb.frame["index"], pred.index)
    assert emb.frame["correct"].mean() > 0.95
    # meaning: in the 2-D map, an image's nearest neighbours share its class
    xy, y = emb.frame[["x", "y"]].to_numpy(), emb.frame["true"].to_numpy()
    knn = KNeighborsClassifier(5).fit(xy[::2], y[::2])
    assert knn.score(xy[1::2], y[1::2]) > 0.9
    again = tsne(dpass.layers["dense1"].full, pred, perplexity=20, seed=0)
    np.testing.assert_allclose(again.frame[["x", "y"]], emb.frame[["x", "y"]]), "seeded: same picture"


def test_tsne_subsamples_above_the_cap(pred, dpass):
    emb = tsne(dpass.layers["dense1"].full, pred, perplexity=5, max_points=60, max_iter=250)
    assert len(emb.frame) == 60 and emb.total == len(pred.index) and emb.subsampled
    assert set(emb.frame["index"]) <= set(pred.index)


@pytest.mark.parametrize("perplexity, n, ok", [(30, 360, True), (5, 17, True), (5, 16, False), (0.5, 100, False),
                                               (119, 360, True), (120, 360, False)])
def test_perplexity_is_validated_against_the_number_of_images(perplexity, n, ok):
    if ok:
        check_perplexity(perplexity, n)
    else:
        with pytest.raises(InvalidParameterError, match="Perplexity|at least"):
            check_perplexity(perplexity, n)


# ------------------------------------------------------------------------------------------- activations
def test_channel_maps_match_bundle_activations_and_grid_is_sorted(digits, dset):
    x = digits.preprocess(dset.read([7])[0][None])
    maps = act.channel_maps(digits, x, "conv3")
    direct = digits.activations(x, "conv3").reshape(16, 16, 32)
    np.testing.assert_allclose(maps, np.moveaxis(direct, -1, 0), rtol=1e-6)
    for by in ("mean", "max"):
        order = act.strongest_channels(maps, by)
        strength = act.channel_strength(maps, by)
        assert np.all(np.diff(strength[order]) <= 0), "strongest first"
        grid, shown = act.activation_grid(maps, by, max_channels=12, cols=4, tile=40)
        np.testing.assert_array_equal(shown, order[:12])
        assert grid.dtype == np.uint8 and grid.shape[1] > 4 * 40 and grid.shape[0] > 3 * 40
    overlays = act.strongest_overlays(np.repeat(dset.read([7])[0], 3, -1), maps, "max", k=3)
    assert [c for c, _, _ in overlays] == list(act.strongest_channels(maps, "max")[:3])
    assert overlays[0][2].shape == (32, 32, 3)
    with pytest.raises(InvalidParameterError, match="convolutional"):
        act.channel_maps(digits, x, "dense1")


def test_max_activating_images_are_the_top_k_by_activation(digits, dset, dpass):
    x = digits.preprocess(np.stack(dset.read(dpass.index)))
    direct = digits.activations(x, "conv3").reshape(len(x), -1, 32)  # (M, positions, C)
    stats = dpass.layers["conv3"]
    for channel in (0, 5, 31):
        ids, values, rows = act.top_k_images(stats.channel_max, dpass.index, channel, k=9)
        expected_rows = np.argsort(-direct[:, :, channel].max(axis=1), kind="stable")[:9]
        np.testing.assert_array_equal(ids, dpass.index[expected_rows])
        np.testing.assert_allclose(values, direct[expected_rows, :, channel].max(axis=1), rtol=1e-5)
        # the strongest location really is where the channel peaks in that image
        best = rows[0]
        assert stats.channel_argmax[best, channel] == direct[best, :, channel].argmax()
        # the neuron handed to Visualize is the one that holds the maximum
        neuron = act.neuron_at(stats.shape, int(stats.channel_argmax[best, channel]), channel)
        assert direct.reshape(len(x), -1)[best, neuron] == pytest.approx(values[0], rel=1e-5)
    with pytest.raises(InvalidParameterError, match="out of range"):
        act.top_k_images(stats.channel_max, dpass.index, 32)


def test_top_k_ties_are_stable():
    values = np.array([[1.0], [3.0], [3.0], [2.0]])
    ids, _, _ = act.top_k_images(values, np.array([40, 41, 42, 43]), 0, k=3)
    np.testing.assert_array_equal(ids, [41, 42, 43])


def _chain() -> tf.keras.Model:
    """Linear conv/pool chain with every geometry the walk handles (no ReLU: every weight counts)."""
    tf.keras.utils.set_random_seed(3)
    init = tf.keras.initializers.RandomUniform(0.1, 1.0, seed=3)
    inp = tf.keras.Input((40, 40, 1), name="image")
    a = tf.keras.layers.Conv2D(2, 3, padding="same", kernel_initializer=init, name="c1")(inp)       # rf 3, off -1
    b = tf.keras.layers.AveragePooling2D(2, name="p1")(a)                                           # rf 4, j 2
    c = tf.keras.layers.Conv2D(2, 5, strides=2, padding="valid", kernel_initializer=init, name="c2")(b)  # rf 12, j 4
    d = tf.keras.layers.ZeroPadding2D(((1, 0), (2, 1)), name="pad")(c)
    e = tf.keras.layers.Conv2D(2, 3, dilation_rate=2, kernel_initializer=init, name="c3")(d)        # rf 28
    side = tf.keras.layers.Conv2D(2, 1, strides=4, kernel_initializer=init, name="side")(inp)     # 1 px, j 4
    f = tf.keras.layers.Add(name="add")([c, tf.keras.layers.Cropping2D(((0, 2), (0, 2)), name="crop")(side)])
    out = tf.keras.layers.Dense(2, name="out")(tf.keras.layers.Flatten()(tf.keras.layers.Concatenate()(
        [tf.keras.layers.GlobalAveragePooling2D()(e), tf.keras.layers.GlobalAveragePooling2D()(f)])))
    return tf.keras.Model(inp, out)


@pytest.fixture(scope="module")
def chain() -> ModelBundle:
    return ModelBundle.create(_chain, name="chain", preprocessing=PREPROCESSINGS["raw"], class_names=["a", "b"])


def test_receptive_field_of_a_known_chain(chain):
    rf = act.receptive_fields(chain.model)
    assert rf["c1"] == act.ReceptiveField((1, 1), (3, 3), (-1, -1))
    assert rf["p1"] == act.ReceptiveField((2, 2), (4, 4), (-1, -1))
    assert rf["c2"] == act.ReceptiveField((4, 4), (12, 12), (-1, -1))
    assert rf["pad"] == act.ReceptiveField((4, 4), (12, 12), (-5, -9))
    assert rf["c3"] == act.ReceptiveField((4, 4), (28, 28), (-5, -9))
    assert rf["add"].exact and rf["add"].jump == (4, 4)


@pytest.mark.parametrize("layer", ["c1", "p1", "c2", "c3", "add"])
def test_receptive_field_box_is_exactly_the_pixels_a_unit_depends_on(chain, layer):
    """The gradient of one unit w.r.t. the input is non-zero exactly inside the computed box (a linear net with
    positive weights has no cancellations)."""
    shape = chain.layer(layer).output_shape
    with chain.scope():
        t = chain.layer_output(layer)
        pos = tf.compat.v1.placeholder(tf.int32, (2,))
        grad = tf.gradients(t[0, pos[0], pos[1], 0], chain.model.input)[0]
    rf = act.receptive_field(chain, layer)
    x = np.random.default_rng(0).random((1, 40, 40, 1)).astype(np.float32)
    for row, col in [(0, 0), (shape[0] // 2, shape[1] // 2), (shape[0] - 1, 1)]:
        g = chain.run(grad, x, feed={pos: np.array([row, col], np.int32)})[0, ..., 0]
        rows, cols = np.nonzero(g)
        box = rf.box(row, col, (40, 40))
        support = (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)
        inside = box == (rf.offset[0] + row * rf.jump[0], rf.offset[1] + col * rf.jump[1],
                         rf.offset[0] + row * rf.jump[0] + rf.size[0], rf.offset[1] + col * rf.jump[1] + rf.size[1])
        if layer != "c3" or inside:  # a dilated kernel at the border may skip the first rows inside the box
            assert support == box, (row, col)
        assert box[0] <= support[0] and box[1] <= support[1] and support[2] <= box[2] and support[3] <= box[3]


def test_demo_receptive_fields_and_patch(digits, dpass, dset):
    rf = act.receptive_field(digits, "pool2")
    assert rf == act.ReceptiveField((4, 4), (12, 12), (-4, -4))
    stats = dpass.layers["conv3"]
    box = act.max_location_box(digits, "conv3", int(stats.channel_argmax[0, 0]))
    top, left, bottom, right = box
    assert 0 <= top < bottom <= 32 and 0 <= left < right <= 32 and bottom - top <= 10 and right - left <= 10
    image = dset.read([dpass.index[0]])[0]
    assert act.crop(image, box).shape == (bottom - top, right - left, 1)
    outlined = act.draw_box(image, box)
    assert outlined.shape == (32, 32, 3) and tuple(outlined[top, left]) == (255, 40, 40)
    card = act.patch_card(np.repeat(image, 3, -1), box, side=64)
    assert card.shape == (64, 64 + 6 + 64, 3)
    assert act.patch_card(np.repeat(image, 3, -1), None, side=64).shape == (64, 64, 3)
    resnet = load_demo_model("digits_resnet")
    assert act.receptive_field(resnet, "block2_out").exact  # Add of a 1×1 projection and a 3×3 path


# ------------------------------------------------------------------------------------------- deep dream
def test_deep_dream_raises_the_channel_at_least_five_fold(digits):
    progress = []
    result = dream(digits, 7, "conv3", steps=96, noise=0.02, progress=lambda d, t: progress.append((d, t)))
    # measured independently of dream's own bookkeeping
    after = digits.activations(digits.preprocess(result.image[None]), "conv3").reshape(16, 16, 32)[..., 7].mean()
    assert result.start > 0 and result.end >= 5 * result.start, (result.start, result.end)
    assert after >= 5 * result.start, "the saved uint8 image keeps the gain"
    assert progress[-1] == (96, 96) and len(result.history) == 96
    assert result.image.dtype == np.uint8 and result.image.shape == (32, 32, 1)


def test_deep_dream_for_a_class_and_from_an_image(digits, dset):
    start = dset.read([0])[0]
    result = dream(digits, 3, kind="class", start=start, steps=40)
    assert result.end > result.start + 5
    assert digits.predict(result.image[None])[0].argmax() == 3


def test_deep_dream_builds_its_graph_once_per_layer(digits):
    dream(digits, 1, "conv3", steps=2)
    ops = len(digits.graph.get_operations())
    dream(digits, 2, "conv3", steps=2)
    dream(digits, 3, "conv3", steps=2, octaves=1)
    assert len(digits.graph.get_operations()) == ops, "a new channel must not grow the graph"


def test_deep_dream_rejects_bad_requests(digits):
    with pytest.raises(InvalidParameterError, match="out of range"):
        dream(digits, 32, "conv3")
    with pytest.raises(InvalidParameterError, match="iterations"):
        dream(digits, 0, "conv3", steps=MAX_STEPS + 1)
    with pytest.raises(InvalidParameterError):
        dream(digits, 0, "input")


@pytest.mark.parametrize("pre", ["unit", "symmetric", "caffe", "torch"])
def test_affine_inverse_of_every_preprocessing(pre):
    class Fake:
        channels = 3
        preprocessing = PREPROCESSINGS[pre]

    raw = np.random.default_rng(1).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(affine_inverse(Fake())(PREPROCESSINGS[pre](raw)), raw, atol=1e-2)
