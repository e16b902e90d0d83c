"""Strategies (SpRAy, xai_core.analysis.strategies) and the shortcut check (xai_core.analysis.shortcut).

On the bias demo (tagged_shapes_cnn, a Clever Hans predictor): the circle class's strategies put the tagged images in
a cluster of their own, chosen by the eigengap; no other class is split by the tag; masking that cluster's hot region
takes the circle score away, a control region does not, pasting it turns other shapes into circles. The same holds
for the model file uploaded (load_user_model) and the test images as a zip (open_zip). Pure pieces are checked on
constructed inputs whose answer is known.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score
from strategies_demo import CIRCLE, analyse

from xai_core.analysis import shortcut as sc
from xai_core.analysis import strategies as spray
from xai_core.data.dataset import Dataset, demo_dataset, open_zip
from xai_core.data.demo import SHAPE_CLASSES, load_demo_set
from xai_core.errors import InvalidParameterError
from xai_core.methods import Target, explain
from xai_core.models.demo import DEMO_MODELS
from xai_core.models.upload import load_user_model


# ------------------------------------------------------------------------------------------------ pure pieces
def test_pool_maps_averages_cells_and_normalises():
    maps = np.zeros((2, 8, 8), np.float32)
    maps[0, :4, :4] = 2.0  # top-left quarter
    maps[0, 4:, 4:] = -1.0  # negative evidence, dropped as "positive"
    maps[1] = -1.0  # nothing positive: stays zero
    pos = spray.pool_maps(maps, grid=2, relevance="positive")
    np.testing.assert_allclose(pos[0], [1, 0, 0, 0])
    np.testing.assert_allclose(pos[1], 0)
    signed = spray.pool_maps(maps, grid=2, relevance="signed")
    np.testing.assert_allclose(signed[0], [2 / 3, 0, 0, -1 / 3])
    np.testing.assert_allclose(spray.pool_maps(maps, 2, "absolute")[1], 0.25)
    odd = spray.pool_maps(np.ones((1, 7, 5)), grid=3)  # cells of unequal size still average
    np.testing.assert_allclose(odd, 1 / 9)
    with pytest.raises(InvalidParameterError, match="positive, signed, absolute"):
        spray.pool_maps(maps, relevance="loud")


def test_eigengap_finds_the_number_of_separated_groups():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 10
    three = np.concatenate([c + rng.normal(size=(30, 3)) for c in centres])
    s = spray.spectral_embedding(three, neighbours=5)
    assert s.eigengap == 3 and s.eigenvalues[0] == pytest.approx(0, abs=1e-9)
    labels = spray.kmeans_labels(s, 3)
    assert adjusted_rand_score(np.repeat([0, 1, 2], 30), labels) == 1.0
    assert spray.eigengap(np.array([0, 0.01, 0.02, 0.5, 0.55])) == 3


def test_kmeans_numbers_clusters_by_size():
    x = np.concatenate([np.zeros((5, 2)), np.full((20, 2), 10.0)]) + np.random.default_rng(1).normal(size=(25, 2))
    labels = spray.kmeans_labels(spray.spectral_embedding(x, neighbours=4), 2)
    assert (labels == 0).sum() == 20 and (labels == 1).sum() == 5


def test_where_and_agreement():
    m = np.zeros((30, 30))
    m[25:, :4] = 1.0
    region, share = spray.where(m)
    assert region == "bottom-left" and share == pytest.approx(1.0)
    assert spray.where(-np.ones((6, 6)))[1] == 0.0
    labels, truth = np.array([0, 0, 0, 1, 1, 1]), np.array([1, 1, 0, 0, 0, 0], bool)
    assert spray.agreement(labels, truth) == (0, pytest.approx(2 / 3), 1.0)


def test_shrink_maps_and_region_tools():
    maps = np.arange(2 * 128 * 96, dtype=np.float32).reshape(2, 128, 96)
    small = spray.shrink_maps(maps)
    assert small.shape == (2, 64, 48) and small[0, 0, 0] == pytest.approx(maps[0, :2, :2].mean())
    mean = np.zeros((10, 10))
    mean[8:, :2] = 5.0
    region = sc.hot_region(mean, area=0.04)
    assert region.sum() == 4 and region[8:, :2].all()
    big = sc.to_size(region, (20, 20))
    assert big.sum() == 16 and big[16:, :4].all()
    images = np.full((2, 20, 20, 3), 100, np.uint8)
    images[:, big] = 255
    filled = sc.fill_region(images, big)
    assert (filled[:, big] == 100).all() and (filled[:, ~big] == images[:, ~big]).all()
    pasted = sc.paste_region(np.zeros((3, 20, 20, 3), np.uint8), images[:1], big)
    assert (pasted[:, big] == 255).all() and (pasted[:, ~big] == 0).all()
    with pytest.raises(InvalidParameterError, match="no positive relevance"):
        sc.hot_region(-mean)


def test_too_few_images_is_a_clear_error(tiny):
    ds = demo_dataset("digits")
    with pytest.raises(InvalidParameterError, match="at least 10"):
        spray.class_maps(tiny, ds, 0, np.arange(3), np.zeros((3, tiny.num_classes)), "gradient")


# ------------------------------------------------------------------------------------------------ the bias demo
# biased, tagged_test, circle: session fixtures of tests/conftest.py (the report tests use the same analysis)


def test_biased_class_strategies_isolate_the_tagged_images(circle, tagged_test):
    """Done-when of issue 26: the eigengap chooses ≥ 2 clusters and one of them is the tagged circles."""
    assert circle.suggested >= 2
    tagged = tagged_test.tagged[circle.maps.index]
    best, purity, recall = spray.agreement(circle.clusters(circle.suggested), tagged)
    assert purity >= 0.9 and recall >= 0.9
    table = spray.cluster_table(circle, circle.suggested)
    assert table.loc[best, "where"] == "bottom-left"  # where the tag is
    assert table.loc[best, "concentration"] == table["concentration"].max()


@pytest.mark.parametrize("c", [k for k in range(len(SHAPE_CLASSES)) if k != CIRCLE])
def test_unbiased_classes_are_not_split_by_the_tag(biased, tagged_test, c):
    s = analyse(biased, tagged_test, c)
    tagged = tagged_test.tagged[s.maps.index]
    labels = s.clusters(s.suggested)
    _, purity, recall = spray.agreement(labels, tagged)
    assert not (purity >= 0.9 and recall >= 0.9)
    assert adjusted_rand_score(tagged, labels) < 0.2


def test_maps_are_the_methods_maps_image_by_image(biased, tagged_test, circle):
    """Batching changes nothing: each kept map equals explain() of that image alone."""
    some = circle.maps.index[:3]
    x = np.stack([tagged_test.reader(i) for i in some])
    alone = explain(biased, "lrp.epsilon", x, Target.of_class(CIRCLE)).maps[:, 0]
    np.testing.assert_allclose(circle.maps.maps[:3], alone, rtol=1e-4, atol=1e-5 * np.abs(alone).max())


def test_shortcut_check_measures_the_tag(biased, tagged_test, circle):
    """Masking the tag cluster's hot region takes the circle score away (a region of the same size elsewhere does
    not), and pasting it into other shapes turns many of them into circles."""
    k = circle.suggested
    best, _, _ = spray.agreement(circle.clusters(k), tagged_test.tagged[circle.maps.index])
    pred = biased.predict(np.stack([tagged_test.reader(i) for i in range(len(tagged_test))])).argmax(1)
    others = np.flatnonzero((tagged_test.labels != CIRCLE) & (pred != CIRCLE))
    check = sc.shortcut_check(biased, tagged_test, circle, k, best, others)
    drop, control = check.drop(sc.GROUPS[0], sc.CONDITIONS[1]), check.drop(sc.GROUPS[0], sc.CONDITIONS[2])
    assert drop <= -4.0 and abs(control) <= abs(drop) / 4
    summary = check.summary().set_index(["group", "condition"])
    assert summary.loc[(sc.GROUPS[0], sc.CONDITIONS[1]), "is_class"] <= 0.3  # no longer called circle
    assert summary.loc[(sc.GROUPS[2], sc.CONDITIONS[0]), "is_class"] == 0.0
    assert summary.loc[(sc.GROUPS[2], sc.CONDITIONS[3]), "is_class"] >= 0.3  # from none: 0.43 measured
    assert check.region[48:61, 2:16].mean() >= 0.5  # the region is on the tag
    assert (check.k, check.seed, check.max_images, circle.seed) == (k, 0, sc.MAX_IMAGES, 0)  # for the report
    per = check.per_image()
    masked = per.loc[per["group"] == sc.GROUPS[0], f"change, {sc.CONDITIONS[1]}"]
    assert len(masked) == (circle.clusters(k) == best).sum() and masked.mean() == pytest.approx(drop)
    assert per.loc[per["group"] == sc.GROUPS[2], f"change, {sc.CONDITIONS[1]}"].isna().all()  # not masked there
    assert f"by **{drop:+.2f}** on average" in sc.verdict(check)


def test_uploaded_model_and_zip_data_set(tmp_path: Path):
    """Not only the demo: the model file uploaded as a user's, the test images as a zip of class folders."""
    bundle = load_user_model(DEMO_MODELS["tagged_shapes_cnn"].path.read_bytes(), "my_model.keras",
                             class_names=list(SHAPE_CLASSES))
    demo = load_demo_set("tagged_shapes", "test")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, (img, label) in enumerate(zip(demo.images, demo.labels)):
            png = io.BytesIO()
            Image.fromarray(img).save(png, format="PNG")
            zf.writestr(f"shapes/{SHAPE_CLASSES[label]}/img{i:04d}.png", png.getvalue())
    ds = open_zip(buf.getvalue(), tmp_path, name="shapes.zip")
    try:
        assert ds.class_names == tuple(sorted(SHAPE_CLASSES)) and bundle.source != "demo"
        from xai_core.data.dataset import model_labels

        labels, unmatched = model_labels(ds, bundle.class_names)
        assert not unmatched
        ds = Dataset(ds.name, ds.key, ds.ids, labels, tuple(bundle.class_names), ds.reader)
        s = analyse(bundle, ds, CIRCLE)
        tagged = demo.tagged[[int(i.rsplit("img", 1)[1][:4]) for i in np.asarray(ds.ids)[s.maps.index]]]
        _, purity, recall = spray.agreement(s.clusters(s.suggested), tagged)
        assert s.suggested >= 2 and purity >= 0.9 and recall >= 0.9
    finally:
        bundle.close()
