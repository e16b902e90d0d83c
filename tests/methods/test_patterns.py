"""PatternNet and PatternAttribution: the estimators against their closed form, what the maps mean, where the
patterns live (bundle, disk), and which models are rejected up front."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tiny_models import make_bundle, tiny_cnn

from xai_core.errors import InvalidParameterError, PatternsNotFittedError, UnsupportedMethodError
from xai_core.methods import Target, explain, methods_for, unsupported_reason
from xai_core.methods.patterns import (
    cached_patterns,
    fit_and_cache,
    fit_patterns,
    image_batches,
    load_patterns,
    model_fingerprint,
    patterns_path,
    register_patterns,
    registered_patterns,
    save_patterns,
)
from xai_core.models.bundle import PREPROCESSINGS, ModelBundle

PATTERN_METHODS = ("pattern.net", "pattern.attribution")


def _bundle(factory, name: str, classes: int, preprocessing: str = "unit") -> ModelBundle:
    return ModelBundle.create(factory, name=name, preprocessing=PREPROCESSINGS[preprocessing],
                              class_names=[f"c{i}" for i in range(classes)], source="test")


def _noise(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


# --------------------------------------------------------------------------- the estimators, in closed form
def _expected(x: np.ndarray, w: np.ndarray, b: np.ndarray, two_component: bool) -> np.ndarray:
    """The paper's estimators, unit by unit, straight from the definition (float64).

    linear: a = cov(x, y) / (wᵀ cov(x, y)); two-component: the same over the samples where wᵀx + b > 0 only.
    """
    a = np.zeros_like(w)
    for j in range(w.shape[1]):
        keep = x @ w[:, j] + b[j] > 0 if two_component else np.ones(len(x), bool)
        if keep.sum() < 2:
            continue  # a unit that never fires has no signal: pattern 0
        xs, ys = x[keep], x[keep] @ w[:, j]
        cov = (xs * ys[:, None]).mean(0) - xs.mean(0) * ys.mean()
        a[:, j] = cov / (w[:, j] @ cov)
    return a


def _weights(bundle: ModelBundle, layer: str) -> tuple[np.ndarray, np.ndarray]:
    with bundle.scope():
        w, b = bundle.model.get_layer(layer).get_weights()
    return w.astype(np.float64), b.astype(np.float64)


@pytest.fixture(scope="module")
def one_dense() -> ModelBundle:
    """image 4×4×1 → Flatten → Dense(5, ReLU): one layer with weights, and its output is the explained score.
    Biases centre the units so each fires on about half of the noise images, except unit 0, which never fires."""

    def build():
        tf.keras.utils.set_random_seed(1)
        inp = tf.keras.Input((4, 4, 1))
        dense = tf.keras.layers.Dense(5, activation="relu", name="dense")
        model = tf.keras.Model(inp, dense(tf.keras.layers.Flatten()(inp)))
        w = np.random.default_rng(1).normal(0, 0.5, (16, 5))
        dense.set_weights([w, -0.5 * w.sum(0) + [-100, 0.1, -0.1, 0.2, 0.0]])
        return model

    return _bundle(build, "one-dense", 5)


@pytest.mark.parametrize("estimator", ["relu", "linear"])
def test_dense_patterns_match_the_closed_form(one_dense, estimator):
    """Fitting in uneven batches (running sums) gives the estimator computed directly from all samples."""
    imgs = _noise(300, (4, 4, 1), seed=2)
    done = []
    patterns = fit_patterns(one_dense, image_batches(imgs, 7), len(imgs), estimator,
                            progress=lambda d, t: done.append((d, t)))
    w, b = _weights(one_dense, "dense")
    x = imgs.reshape(len(imgs), -1) / 255.0
    expected = _expected(x, w, b, two_component=estimator == "relu")
    # Per-batch sums come from float32 TF kernels whose reduction order varies between runs: 1e-5 of the largest
    # entry was exceeded once in ~10 runs (7e-6 on one of 80 entries); a wrong estimator is off by > 10 %.
    np.testing.assert_allclose(patterns.layers["dense"], expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())
    norm = np.einsum("dc,dc->c", w, patterns.layers["dense"])  # wᵀa = 1 (the paper's normalisation)
    np.testing.assert_allclose(norm, [0.0 if estimator == "relu" else 1.0, 1, 1, 1, 1], rtol=1e-4)
    assert done[-1] == (300, 300) and [d for d, _ in done] == sorted(d for d, _ in done)
    assert patterns.images == 300 and patterns.estimator == estimator


def _patches(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """TF 'same' padding patches ``(N, out, out, k·k·C)`` in kernel order (row, column, channel), with loops."""
    n, size, _, c = x.shape
    out = -(-size // stride)
    pad = max((out - 1) * stride + k - size, 0)
    xp = np.pad(x, ((0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2), (0, 0)))
    p = np.zeros((n, out, out, k * k * c))
    for r in range(out):
        for q in range(out):
            p[:, r, q] = xp[:, r * stride:r * stride + k, q * stride:q * stride + k, :].reshape(n, -1)
    return p


@pytest.mark.parametrize("estimator", ["relu", "linear"])
def test_conv_patterns_match_the_closed_form(estimator):
    """A strided 'same' convolution: every output position is one sample of the input patch under the kernel.
    The logits layer has no ReLU, so the relu estimator uses the linear one there."""

    def build():
        tf.keras.utils.set_random_seed(2)
        inp = tf.keras.Input((7, 7, 3))
        conv = tf.keras.layers.Conv2D(3, 3, strides=2, padding="same", activation="relu", name="conv")
        model = tf.keras.Model(inp, tf.keras.layers.Dense(4, name="logits")(tf.keras.layers.Flatten()(conv(inp))))
        w = np.random.default_rng(2).normal(0, 0.3, (3, 3, 3, 3))
        conv.set_weights([w, -0.4 * w.sum(axis=(0, 1, 2))])  # units fire on part of the patches
        return model

    bundle = _bundle(build, f"one-conv-{estimator}", 4)
    imgs = _noise(120, (7, 7, 3), seed=3)
    patterns = fit_patterns(bundle, image_batches(imgs, 50), None, estimator)
    x = imgs / 255.0
    w, b = _weights(bundle, "conv")
    patches = _patches(x, 3, 2)
    acts = bundle.activations(bundle.preprocess(imgs), "conv").reshape((*patches.shape[:3], 3))
    np.testing.assert_allclose(np.maximum(patches @ w.reshape(-1, 3) + b, 0), acts, rtol=1e-4, atol=1e-5)
    expected = _expected(patches.reshape(-1, patches.shape[-1]), w.reshape(-1, 3), b, estimator == "relu")
    np.testing.assert_allclose(patterns.layers["conv"].reshape(-1, 3), expected, rtol=1e-4,
                               atol=1e-5 * np.abs(expected).max())
    w2, b2 = _weights(bundle, "logits")
    flat = acts.reshape(len(imgs), -1)
    np.testing.assert_allclose(patterns.layers["logits"], _expected(flat, w2, b2, two_component=False), rtol=1e-4,
                               atol=1e-5 * np.abs(patterns.layers["logits"]).max())


def test_linear_pattern_recovers_the_planted_signal():
    """The paper's two-pixel example: x = a_s·s + a_d·d with a distractor d the filter w = (1, −1) cancels. The
    weights are not the signal direction, the pattern is: a → a_s = (1, 0). PatternNet shows the signal (nothing
    on the distractor-only pixel), the gradient shows the filter."""

    def build():
        inp = tf.keras.Input((1, 2, 1))
        w = tf.keras.initializers.Constant([[1.0], [-1.0]])
        out = tf.keras.layers.Dense(1, use_bias=False, kernel_initializer=w, name="w")(tf.keras.layers.Flatten()(inp))
        return tf.keras.Model(inp, out)

    bundle = _bundle(build, "two-pixel", 1, preprocessing="raw")
    rng = np.random.default_rng(0)
    s, d = rng.normal(size=20000), rng.normal(size=20000)
    x = np.outer(s, [1.0, 0.0]) + np.outer(d, [1.0, 1.0])
    pixels = (128 + 20 * x).reshape(-1, 1, 2, 1)
    patterns = fit_patterns(bundle, image_batches(pixels, 1000), len(pixels), "linear")
    np.testing.assert_allclose(patterns.layers["w"][:, 0], [1.0, 0.0], atol=0.02)
    register_patterns(bundle, patterns)
    image = pixels[:1]
    y = float(bundle.logits(bundle.preprocess(image))[0, 0])
    net = explain(bundle, "pattern.net", image, Target.of_class(0), {"estimator": "linear"}).raw[0, 0].ravel()
    np.testing.assert_allclose(net, patterns.layers["w"][:, 0] * y, rtol=1e-5)
    assert abs(net[1]) < 0.03 * abs(net[0])
    grad = explain(bundle, "gradient", image, Target.of_class(0)).raw[0, 0].ravel()
    np.testing.assert_allclose(grad, [1.0, -1.0], rtol=1e-6)
    attribution = explain(bundle, "pattern.attribution", image, Target.of_class(0), {"estimator": "linear"})
    np.testing.assert_allclose(attribution.raw[0, 0].ravel(), [1.0, -1.0] * patterns.layers["w"][:, 0] * y, rtol=1e-5)


@pytest.mark.parametrize("estimator", ["relu", "linear"])
def test_one_layer_maps_are_score_times_pattern(one_dense, estimator):
    """With one layer, PatternNet's map is a_c·y_c and PatternAttribution's w_c ⊙ a_c·y_c (y_c: the explained
    score, 0 for a unit that does not fire)."""
    imgs = _noise(200, (4, 4, 1), seed=4)
    register_patterns(one_dense, fit_patterns(one_dense, [imgs], None, estimator))
    a = registered_patterns(one_dense, estimator).layers["dense"]
    w, _ = _weights(one_dense, "dense")
    test = _noise(6, (4, 4, 1), seed=5).astype(np.float32)
    y = one_dense.logits(one_dense.preprocess(test))
    for cls in range(5):
        net = explain(one_dense, "pattern.net", test, Target.of_class(cls), {"estimator": estimator}).raw[:, 0]
        att = explain(one_dense, "pattern.attribution", test, Target.of_class(cls), {"estimator": estimator}).raw[:, 0]
        expected = y[:, cls, None] * a[:, cls][None]
        np.testing.assert_allclose(net.reshape(6, -1), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(att.reshape(6, -1), expected * w[:, cls][None], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- on the trained demo CNN
@pytest.fixture(scope="module")
def digits():
    """The trained digits CNN with relu patterns fitted on the digits train split, and 120 test images."""
    from xai_core.data.demo import load_demo_set
    from xai_core.models.demo import load_demo_model

    bundle = load_demo_model("digits_cnn")
    train = load_demo_set("digits", "train").images
    register_patterns(bundle, fit_patterns(bundle, image_batches(train), len(train), "relu"))
    return bundle, load_demo_set("digits", "test").images[:120].astype(np.float32)


def _stroke_ratio(maps: np.ndarray, images: np.ndarray) -> float:
    """Mean |relevance| per stroke pixel over mean |relevance| per background pixel."""
    strokes = images[..., 0] > 64
    mass = np.abs(maps)
    return float(mass[strokes].mean() / mass[~strokes].mean())


def test_pattern_attribution_differs_from_gradient_and_sits_on_the_strokes(digits):
    bundle, imgs = digits
    pa = explain(bundle, "pattern.attribution", imgs).maps[:, 0]
    grad = explain(bundle, "gradient", imgs).maps[:, 0]
    corr = [np.corrcoef(p.ravel(), g.ravel())[0, 1] for p, g in zip(pa, grad)]
    assert np.median(corr) < 0.7, np.median(corr)  # not a rescaled gradient
    ratio_pa, ratio_grad = _stroke_ratio(pa, imgs), _stroke_ratio(grad, imgs)
    assert ratio_pa > 3.0, ratio_pa  # measured 6.9: relevance per stroke pixel ≫ per background pixel
    assert ratio_pa > 2 * ratio_grad, (ratio_pa, ratio_grad)  # gradient: 1.9
    net = explain(bundle, "pattern.net", imgs).maps[:, 0]
    assert _stroke_ratio(net, imgs) > 2 * ratio_grad


def test_relu_estimator_differs_from_linear_only_for_relu_layers(digits):
    bundle, _ = digits
    from xai_core.data.demo import load_demo_set

    train = load_demo_set("digits", "train").images[:400]
    relu = fit_patterns(bundle, image_batches(train), None, "relu")
    linear = fit_patterns(bundle, image_batches(train), None, "linear")
    np.testing.assert_allclose(relu.layers["predictions_logits"], linear.layers["predictions_logits"], rtol=1e-6)
    for layer in ("conv1", "conv2", "conv3", "dense1"):
        assert not np.allclose(relu.layers[layer], linear.layers[layer], rtol=0.05), layer


# --------------------------------------------------------------------------- registration, disk, graph
@pytest.fixture(scope="module")
def fitted() -> ModelBundle:
    bundle = make_bundle(lambda: tiny_cnn(seed=3), "tiny-patterns")
    register_patterns(bundle, fit_patterns(bundle, [_noise(48, bundle.input_shape, seed=6)]))
    return bundle


def test_unfitted_model_raises_a_clear_error(images):
    bundle = make_bundle(lambda: tiny_cnn(seed=3), "tiny-unfitted")
    for mid in PATTERN_METHODS:
        assert mid in methods_for(bundle), "supported: fitting is a step, not a support question"
        with pytest.raises(PatternsNotFittedError, match="not been fitted"):
            explain(bundle, mid, images[:2])
    register_patterns(bundle, fit_patterns(bundle, [_noise(20, bundle.input_shape)], estimator="relu"))
    assert np.any(explain(bundle, "pattern.net", images[:2]).maps != 0)
    with pytest.raises(PatternsNotFittedError, match="linear"):
        explain(bundle, "pattern.net", images[:2], params={"estimator": "linear"})


def test_save_load_round_trip_and_disk_cache(fitted, images, tmp_path):
    patterns = registered_patterns(fitted, "relu")
    path = save_patterns(patterns, tmp_path / "p.npz")
    back = load_patterns(path)
    assert (back.estimator, back.images, back.fingerprint) == (patterns.estimator, patterns.images,
                                                               patterns.fingerprint)
    assert back.layers.keys() == patterns.layers.keys()
    for name in patterns.layers:
        np.testing.assert_array_equal(back.layers[name], patterns.layers[name])
    # fit_and_cache writes under the model key; a fresh bundle of the same model finds it there
    key = "test:tiny-seed-3"
    fit_and_cache(fitted, key, [_noise(48, fitted.input_shape, seed=6)], root=tmp_path)
    assert patterns_path(key, "relu", tmp_path).exists()
    twin = make_bundle(lambda: tiny_cnn(seed=3), "tiny-twin")
    assert registered_patterns(twin) is None and cached_patterns(twin, key, root=tmp_path) is not None
    np.testing.assert_allclose(explain(twin, "pattern.attribution", images).maps,
                               explain(fitted, "pattern.attribution", images).maps, rtol=1e-5, atol=1e-7)
    # other weights under the same key: stale, so not used (fit again)
    other = make_bundle(lambda: tiny_cnn(seed=4), "tiny-other")
    assert model_fingerprint(other) != model_fingerprint(fitted)
    assert cached_patterns(other, key, root=tmp_path) is None
    with pytest.raises(InvalidParameterError, match="different model"):
        register_patterns(other, patterns)


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_LENS_CACHE", str(tmp_path))
    path = patterns_path("demo:digits_cnn", "linear")
    assert path.parent == tmp_path / "patterns"
    assert path.name.startswith("demo-digits-cnn-") and path.name.endswith("-linear.npz")
    assert patterns_path("upload:abc:unit:-") != patterns_path("upload:abc-unit")


def test_refitting_never_grows_the_graph(images):
    bundle = make_bundle(lambda: tiny_cnn(seed=3), "tiny-refit")
    register_patterns(bundle, fit_patterns(bundle, [_noise(30, bundle.input_shape, seed=1)]))
    first = explain(bundle, "pattern.attribution", images, Target.of_class(1)).maps
    n_ops = len(bundle.graph.get_operations())
    for cls in range(5):
        explain(bundle, "pattern.attribution", images, Target.of_class(cls))
    register_patterns(bundle, fit_patterns(bundle, [_noise(30, bundle.input_shape, seed=2)]))
    again = explain(bundle, "pattern.attribution", images, Target.of_class(1)).maps
    assert not np.allclose(first, again), "new patterns must be used"
    assert len(bundle.graph.get_operations()) == n_ops


def test_neuron_map_stays_in_receptive_field(fitted, images):
    from xai_core.methods import flat_neuron_index

    idx = flat_neuron_index(fitted.layer("conv1").output_shape, (5, 7, 2))
    for mid in PATTERN_METHODS:
        m = explain(fitted, mid, images[:3], Target.neuron("conv1", idx)).maps[:, 0]
        outside = m.copy()
        outside[:, 5:8, 7:10] = 0
        assert np.all(outside == 0) and np.any(m != 0), mid


# --------------------------------------------------------------------------- models the estimator cannot handle
def _bn_residual():
    inp = tf.keras.Input((16, 16, 3))
    x = tf.keras.layers.Conv2D(4, 3, padding="same", name="c1")(inp)
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    x = tf.keras.layers.Add(name="add")([x, tf.keras.layers.Conv2D(4, 1, name="skip")(inp)])
    x = tf.keras.layers.ReLU()(x)
    return tf.keras.Model(inp, tf.keras.layers.Dense(5)(tf.keras.layers.Flatten()(x)))


def _depthwise():
    inp = tf.keras.Input((16, 16, 3))
    x = tf.keras.layers.DepthwiseConv2D(3, activation="relu", name="dw")(inp)
    return tf.keras.Model(inp, tf.keras.layers.Dense(5)(tf.keras.layers.GlobalAveragePooling2D()(x)))


def _raw_tf_ops():
    inp = tf.keras.Input((16, 16, 3))
    x = tf.keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, tf.keras.layers.Dense(5)(x[:, :2] * 2.0))  # raw TF ops: opaque to the backward pass


@pytest.mark.parametrize("factory, classes, words", [
    (_bn_residual, 5, ("BatchNormalization (bn)", "Add (add)")),
    (_depthwise, 5, ("DepthwiseConv2D (dw)",)),
    (lambda: tiny_cnn(activation="swish", seed=3), 5, ("swish units (conv1, conv2)",)),
    (_raw_tf_ops, 5, ("TensorFlowOpLayer",)),
])
def test_unsupported_models_are_rejected_by_the_static_check(images, factory, classes, words):
    bundle = _bundle(factory, "unsupported", classes)
    for mid in PATTERN_METHODS:
        reason = unsupported_reason(bundle, mid)
        assert reason and all(w in reason for w in words), reason
        assert mid not in methods_for(bundle)
        with pytest.raises(UnsupportedMethodError):
            explain(bundle, mid, images[:1])
    with pytest.raises(InvalidParameterError):
        fit_patterns(bundle, [_noise(4, bundle.input_shape)])


def test_model_without_weighted_layers_is_rejected():
    def pooled():
        inp = tf.keras.Input((16, 16, 3))
        return tf.keras.Model(inp, tf.keras.layers.GlobalAveragePooling2D()(inp))

    bundle = _bundle(pooled, "no-kernels", 3)
    assert "this model has none" in unsupported_reason(bundle, "pattern.net")


def test_models_too_large_to_fit_are_rejected(monkeypatch):
    from xai_core.methods import patterns

    monkeypatch.setattr(patterns, "MEMORY_LIMIT", 10_000)  # tiny_cnn: 1,594 kernel weights, 32 kB
    bundle = make_bundle(lambda: tiny_cnn(seed=3), "tiny-too-large")
    assert "GB of running statistics (layer" in unsupported_reason(bundle, "pattern.attribution")


def test_unwritable_cache_keeps_the_patterns_in_memory(tmp_path, images):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    bundle = make_bundle(lambda: tiny_cnn(seed=3), "tiny-no-disk")
    fit_and_cache(bundle, "test:no-disk", [_noise(20, bundle.input_shape)], root=blocked)
    assert registered_patterns(bundle) is not None
    assert np.any(explain(bundle, "pattern.net", images[:1]).maps != 0)
