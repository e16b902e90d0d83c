"""The embedded demo data sets (xai_core.data.demo): digits and procedural shapes.

The four trained demo models are tested in tests/models/test_demo.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from xai_core.data.demo import (
    DEMO_DATASETS,
    SHAPE_CLASSES,
    DemoSet,
    load_demo_set,
    load_digits_set,
    load_shapes_set,
    make_shapes,
)
from xai_core.errors import DatasetError, XaiLensError


# ---------------------------------------------------------------------------------------------- tagged shapes
def test_tagged_shapes_record_their_tags() -> None:
    """The bias demo's data: the shapes images, a tag pasted on most training circles and almost no other training
    image, on about half of every class in the test split; flags and masks say exactly where."""
    from xai_core.data.demo import TAG_CLASS, TAG_ORIGIN, TAG_SIZE, load_tagged_shapes_set, paste_tag

    plain, test = load_shapes_set("test"), load_tagged_shapes_set("test")
    assert test.tagged is not None and test.tag_masks is not None
    assert test.ids[0] == "tagged_shapes/test/00000" and test.class_names == list(SHAPE_CLASSES)
    np.testing.assert_array_equal(test.labels, plain.labels)
    np.testing.assert_array_equal(test.images[~test.tagged], plain.images[~test.tagged])  # untagged: unchanged
    changed = np.any(test.images != plain.images, axis=3)
    assert not changed[~test.tagged].any() and not test.tag_masks[~test.tagged].any()
    assert np.all(changed[test.tagged] <= test.tag_masks[test.tagged])  # only tag pixels change
    x0, y0 = TAG_ORIGIN
    box = np.zeros((64, 64), bool)
    box[y0:y0 + TAG_SIZE, x0:x0 + TAG_SIZE] = True
    assert np.all(test.tag_masks <= box) and test.tag_masks[test.tagged].sum(axis=(1, 2)).min() >= 0.6 * TAG_SIZE**2
    for k in range(len(SHAPE_CLASSES)):  # tagged and untagged images of every class
        assert 0.3 <= test.tagged[test.labels == k].mean() <= 0.7
    train = load_tagged_shapes_set("train")
    biased = train.labels == SHAPE_CLASSES.index(TAG_CLASS)
    assert train.tagged[biased].mean() >= 0.95 and train.tagged[~biased].mean() <= 0.01
    again, masks = paste_tag(plain.images[test.tagged])
    np.testing.assert_array_equal(again, test.images[test.tagged])
    np.testing.assert_array_equal(masks, test.tag_masks[test.tagged])
    assert load_demo_set("tagged_shapes", "all").tagged.sum() == train.tagged.sum() + test.tagged.sum()


# ---------------------------------------------------------------------------------------------- shapes
def test_shapes_deterministic_for_a_seed() -> None:
    a, b, c = make_shapes(30, seed=7), make_shapes(30, seed=7), make_shapes(30, seed=8)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert a.ids == b.ids
    assert not np.array_equal(a.images, c.images)


def test_shapes_layout_and_balance() -> None:
    s = make_shapes(60, seed=3)
    assert isinstance(s, DemoSet) and len(s) == 60
    assert s.images.shape == (60, 64, 64, 3) and s.images.dtype == np.uint8
    assert s.labels.dtype == np.int64 and s.masks.dtype == bool and s.masks.shape == (60, 64, 64)
    assert s.class_names == list(SHAPE_CLASSES) and len(SHAPE_CLASSES) == 6
    assert np.bincount(s.labels, minlength=6).tolist() == [10] * 6
    assert np.ptp(np.bincount(make_shapes(62, seed=3).labels, minlength=6)) <= 1


def test_shapes_test_split_balanced_and_readonly() -> None:
    s = load_shapes_set("test")
    assert len(s) == 600 and np.bincount(s.labels).tolist() == [100] * 6
    assert len(set(s.ids)) == len(s) and s.ids[0] == "shapes/test/00000"
    assert load_shapes_set("test") is s  # cached
    with pytest.raises(ValueError):
        s.images[0, 0, 0, 0] = 0


def test_shape_masks_cover_a_visible_object() -> None:
    s = make_shapes(120, seed=11)
    areas = s.masks.sum(axis=(1, 2))
    assert areas.min() > 0
    # the object is inside the image: a mask never touches the border
    assert not s.masks[:, 0, :].any() and not s.masks[:, -1, :].any()
    assert not s.masks[:, :, 0].any() and not s.masks[:, :, -1].any()
    # masked pixels stand out: mean colour distance object vs background, per image
    img = s.images.astype(np.float32)
    m = s.masks[..., None]
    obj = (img * m).sum(axis=(1, 2)) / m.sum(axis=(1, 2))
    bg = (img * ~m).sum(axis=(1, 2)) / (~m).sum(axis=(1, 2))
    dist = np.linalg.norm(obj - bg, axis=1)
    assert dist.min() > 40, dist.min()
    assert dist.mean() > 100


# ---------------------------------------------------------------------------------------------- digits
def test_digits_splits() -> None:
    train, test, every = load_digits_set("train"), load_digits_set("test"), load_digits_set("all")
    assert (len(train), len(test), len(every)) == (1437, 360, 1797)
    for d in (train, test, every):
        assert d.images.shape[1:] == (32, 32, 1) and d.images.dtype == np.uint8
        assert d.labels.dtype == np.int64 and d.masks is None
        assert d.class_names == [str(i) for i in range(10)]
    assert test.images.max() == 255 and train.images.min() == 0
    assert not set(train.ids) & set(test.ids)
    assert set(train.ids) | set(test.ids) == set(every.ids)
    # the numeric part is the index in the full set: disjoint across splits too
    assert not {i.rsplit("/", 1)[1] for i in train.ids} & {i.rsplit("/", 1)[1] for i in test.ids}
    assert all(i.startswith("digits/test/") for i in test.ids)
    # stratified: every class is about 20 % test
    frac = np.bincount(test.labels) / np.bincount(every.labels)
    assert np.all(np.abs(frac - 0.2) < 0.03)


def test_dataset_registry_and_errors() -> None:
    assert set(DEMO_DATASETS) == {"digits", "shapes", "tagged_shapes"}
    assert load_demo_set("digits", "test").name == "digits/test"
    with pytest.raises(DatasetError, match="digits, shapes, tagged_shapes"):
        load_demo_set("mnist")
    with pytest.raises(DatasetError, match="train, test, all"):
        load_demo_set("digits", "validation")
    assert issubclass(DatasetError, XaiLensError)
