"""The one-pass statistics over a data set (xai_core.analysis.dataset_pass)."""

from __future__ import annotations

import numpy as np
import pytest

import xai_core.analysis.dataset_pass as stats_module
from xai_core.analysis.dataset_pass import dataset_pass
from xai_core.data.dataset import Dataset, demo_dataset
from xai_core.errors import DatasetError


@pytest.fixture(scope="module")
def tiny_set(images) -> Dataset:
    pixels = images.astype(np.uint8)
    return Dataset("tiny", "tiny", tuple(f"img{i}" for i in range(len(pixels))), np.arange(len(pixels)) % 5,
                   tuple(f"c{i}" for i in range(5)), reader=lambda i: pixels[i])


def test_pass_statistics_equal_direct_activations(tiny, tiny_set, images):
    result = dataset_pass(tiny, tiny_set, ["conv1", "flatten"], batch_size=3)
    x = tiny.preprocess(images.astype(np.uint8))
    np.testing.assert_allclose(result.logits, tiny.logits(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.probs.sum(1), 1, atol=1e-5)
    conv = tiny.activations(x, "conv1").reshape(len(x), -1, 6)  # (N, positions, channels)
    s = result.layers["conv1"]
    assert s.shape == (14, 14, 6)
    np.testing.assert_allclose(s.mean, conv.mean((1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.channel_mean, conv.mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.channel_max, conv.max(1), rtol=1e-5)
    np.testing.assert_array_equal(s.channel_argmax, conv.argmax(1))
    np.testing.assert_allclose(s.full, conv.reshape(len(x), -1), rtol=1e-5, atol=1e-6)
    dense = result.layers["flatten"]
    assert dense.channel_argmax.max() == 0 and dense.channel_mean.shape == (7, 200)


def test_pass_drops_full_activations_of_large_layers_and_failed_images(tiny, images, monkeypatch):
    pixels = images.astype(np.uint8)

    def reader(i: int) -> np.ndarray:
        if i == 2:
            from xai_core.errors import ImageLoadError
            raise ImageLoadError("img2 is damaged")
        return pixels[i]

    ds = Dataset("t", "t2", tuple(f"img{i}" for i in range(7)), np.zeros(7, np.int64), ("c0",), reader=reader)
    monkeypatch.setattr(stats_module, "FULL_LIMIT", 100)
    result = dataset_pass(tiny, ds, ["conv1"])
    assert result.index.tolist() == [0, 1, 3, 4, 5, 6]
    assert result.failed == [("img2", "img2 is damaged")]
    assert result.layers["conv1"].full is None and result.layers["conv1"].neuron(5) is None
    everything_broken = Dataset("b", "b", ("a",), np.zeros(1, np.int64), (), reader=lambda i: reader(2))
    with pytest.raises(DatasetError, match="could be read"):
        dataset_pass(tiny, everything_broken)


def test_demo_dataset_pass_matches_model_accuracy():
    from xai_core.models.demo import load_demo_model

    bundle = load_demo_model("digits_cnn")
    ds = demo_dataset("digits")
    result = dataset_pass(bundle, ds)
    accuracy = float((result.predicted == ds.labels[result.index]).mean())
    assert accuracy == pytest.approx(bundle.info["test_accuracy"], abs=0.005)
