"""Explanation methods: the contract every registry entry keeps, and what each method promises."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tensorflow as tf
from tiny_models import make_bundle, tiny_cnn

from xai_core.errors import InvalidParameterError, UnsupportedMethodError
from xai_core.methods import REGISTRY, Target, explain, get_method, methods_for, unsupported_reason
from xai_core.methods.base import Selection
from xai_core.methods.cam import gradcam
from xai_core.methods.occlusion import patch_positions

ALL = list(REGISTRY)


@pytest.fixture(scope="module")
def tiny_patterns(tiny):
    """Pattern methods need fitted patterns: fit both estimators for ``tiny`` on random images."""
    from xai_core.methods.patterns import fit_patterns, register_patterns

    noise = np.random.default_rng(5).integers(0, 256, (64, *tiny.input_shape), dtype=np.uint8)
    for estimator in ("relu", "linear"):
        register_patterns(tiny, fit_patterns(tiny, [noise[:40], noise[40:]], 64, estimator))


# --------------------------------------------------------------------------- contract (every method)
@pytest.mark.parametrize("method_id", ALL)
def test_contract_every_method(tiny, tiny_patterns, images, method_id):
    """One finite (H, W) map per image, deterministic, independent of batch composition (1 vs 7 images)."""
    seven = explain(tiny, method_id, images, Target.of_class(2))
    assert seven.maps.shape == (7, 1, 16, 16)
    assert seven.maps.dtype == np.float32
    assert np.all(np.isfinite(seven.maps))
    assert np.any(seven.maps != 0), f"{method_id} gave only empty maps"
    again = explain(tiny, method_id, images, Target.of_class(2))
    np.testing.assert_array_equal(seven.maps, again.maps)
    one = explain(tiny, method_id, images[3:4], Target.of_class(2))
    assert one.maps.shape == (1, 1, 16, 16)
    np.testing.assert_allclose(one.maps[0], seven.maps[3], rtol=1e-4, atol=1e-5 * np.abs(seven.maps[3]).max())
    assert seven.indices.tolist() == [[2]] * 7


@pytest.mark.parametrize("method_id", ALL)
def test_registry_entry_is_complete(method_id):
    spec = get_method(method_id)
    assert spec.label and spec.summary and spec.caveat and spec.reference
    assert spec.family in {"Gradient", "LRP", "Deep Taylor", "Pattern", "CAM", "Perturbation", "Reference"}
    for p in spec.params:
        assert p.validate(None) == p.default
        assert p.label and p.help


def test_registry_covers_every_innvestigate_analyzer():
    import innvestigate.analyzer as ia

    ours = {spec.innvestigate_name for spec in REGISTRY.values()} | set(REGISTRY)
    missing = set(ia.analyzers) - ours
    # "random" is reimplemented reproducibly; pattern.* don't exist in 2.x.
    assert missing <= {"random"}, missing


@pytest.fixture(scope="module")
def resnet():
    """The demo's BatchNormalization + residual Add model, and a few of its test images."""
    from xai_core.data.demo import load_demo_set
    from xai_core.models.demo import load_demo_model

    return load_demo_model("digits_resnet"), load_demo_set("digits", "test").images[:3].astype(np.float32)


@pytest.mark.parametrize("method_id", ALL)
def test_every_method_on_batchnorm_residual_model(resnet, method_id):
    """BatchNormalization and Add layers: every method builds, runs and gives finite maps. (This caught two
    iNNvestigate problems: the BN reverse layer's list-valued axis, and variables its LRP rules create.)"""
    bundle, imgs = resnet
    if get_method(method_id).family == "Pattern":  # the paper's estimators are for plain ReLU nets
        assert "BatchNormalization" in unsupported_reason(bundle, method_id)
        return
    assert method_id in methods_for(bundle)
    e = explain(bundle, method_id, imgs)
    assert e.maps.shape == (3, 1, 32, 32) and np.all(np.isfinite(e.maps))
    if not get_method(method_id).signed:  # the map type the method card states is the one it produces
        assert (e.maps >= -1e-6 * np.abs(e.maps).max()).all(), f"{method_id} is declared non-negative"


def test_rules_that_only_spread_a_score_are_declared_non_negative():
    """Issue: the LRP-α1β0 card said "Map: signed — red for, blue against" under "Never shows evidence against the
    class". Positive-only rules (α1β0, z⁺) and the input-blind ones (w², flat) give maps of one sign."""
    for method_id in ("lrp.alpha_1_beta_0", "lrp.alpha_1_beta_0_IB", "lrp.z_plus", "lrp.z_plus_fast", "lrp.w_square",
                      "lrp.flat", "deep_taylor", "gradcam"):
        assert not get_method(method_id).signed, method_id
    for method_id in ("lrp.z", "lrp.epsilon", "lrp.alpha_2_beta_1", "gradient", "integrated_gradients"):
        assert get_method(method_id).signed, method_id


def test_negative_score_on_a_non_negative_method_is_drawn_by_magnitude(resnet):
    """α1β0 for the least likely class spreads a negative logit: all ≤ 0. The page draws it by magnitude (not an
    empty map) and says why."""
    from xai_core.viz.render import normalize

    bundle, imgs = resnet
    worst = int(bundle.logits(bundle.preprocess(imgs)).mean(axis=0).argmin())
    e = explain(bundle, "lrp.alpha_1_beta_0", imgs, Target.of_class(worst))
    assert (e.maps <= 0).all() and (e.maps < 0).any()
    assert any("all ≤ 0" in w for w in e.warnings)
    drawn = normalize(e.maps[:, 0], signed=False)
    assert drawn.max() == pytest.approx(1.0) and drawn.min() >= 0


def test_alpha_beta_conserves_where_a_neuron_has_no_inhibitors(images):
    """iNNvestigate's αβ passes α × R on where a neuron has no inhibiting input (its β part divides by zero):
    α2β1 doubled the relevance at every such neuron (up to 5 × 10⁷ × the score on MobileNetV2). On a bias-free
    ReLU net with non-negative weights no neuron has inhibitors: α2β1 must equal α1β0 and conserve the score."""
    import tensorflow as tf
    from tiny_models import make_bundle

    def positive_net() -> tf.keras.Model:
        init = tf.keras.initializers.RandomUniform(0.0, 0.1, seed=1)
        inp = tf.keras.Input((16, 16, 3), name="image")
        x = tf.keras.layers.Conv2D(4, 3, activation="relu", use_bias=False, kernel_initializer=init, name="c")(inp)
        x = tf.keras.layers.Flatten(name="f")(x)
        out = tf.keras.layers.Dense(5, use_bias=False, kernel_initializer=init, name="predictions")(x)
        return tf.keras.Model(inp, out)

    bundle = make_bundle(positive_net, "alpha-beta-positive")
    x = bundle.preprocess(images)
    logit = bundle.neuron_scores(x, None, np.full(len(x), 2))
    a21 = explain(bundle, "lrp.alpha_2_beta_1", images, Target.of_class(2)).raw.sum(axis=(1, 2, 3, 4))
    a10 = explain(bundle, "lrp.alpha_1_beta_0", images, Target.of_class(2)).raw.sum(axis=(1, 2, 3, 4))
    np.testing.assert_allclose(a21, logit, rtol=1e-4)
    np.testing.assert_allclose(a21, a10, rtol=1e-4)


def _alpha_beta_dense(x, w, b, rel, alpha, beta, bias=True):
    """The αβ rule for one dense layer in numpy: iNNvestigate's split (activators z = x⁺w⁺ + x⁻w⁻ + b⁺ + b⁻,
    inhibitors x⁺w⁻ + x⁻w⁺ + b⁻ + b⁺), with the conserving fix (a neuron without inhibitors passes R)."""
    xp, xn, wp, wn = np.maximum(x, 0), np.minimum(x, 0), np.maximum(w, 0), np.minimum(w, 0)
    b = b if bias else np.zeros_like(b)
    z_act = xp @ wp + xn @ wn + b
    z_inh = xp @ wn + xn @ wp + b
    safe = lambda z: z + 1e-7 * (z == 0)  # noqa: E731  (iNNvestigate's safe_divide)
    if not beta:
        t = rel / safe(z_act)
        return xp * (t @ wp.T) + xn * (t @ wn.T)
    m = (z_inh != 0).astype(x.dtype)
    ta, tb = rel * (1 + (alpha - 1) * m) / safe(z_act), rel * beta * m / safe(z_inh)
    return xp * (ta @ wp.T) + xn * (ta @ wn.T) - (xp * (tb @ wn.T) + xn * (tb @ wp.T))


@pytest.mark.parametrize(("method_id", "alpha", "beta", "bias"), [
    ("lrp.alpha_2_beta_1", 2.0, 1.0, True), ("lrp.alpha_2_beta_1_IB", 2.0, 1.0, False),
    ("lrp.alpha_1_beta_0", 1.0, 0.0, True), ("lrp.alpha_1_beta_0_IB", 1.0, 0.0, False)])
def test_alpha_beta_equals_a_numpy_recomputation(images, method_id, alpha, beta, bias):
    """Independent recomputation of the αβ rules on a two-layer dense ReLU net with biases and inputs of both
    signs (symmetric preprocessing), so every term of the rule (x⁺, x⁻, w⁺, w⁻, b) is exercised."""
    from xai_core.models.bundle import PREPROCESSINGS, ModelBundle

    def dense_net() -> tf.keras.Model:
        init = tf.keras.initializers.RandomNormal(0.0, 0.05, seed=3)
        binit = tf.keras.initializers.RandomNormal(0.0, 0.1, seed=4)
        inp = tf.keras.Input((16, 16, 3), name="image")
        x = tf.keras.layers.Flatten(name="f")(inp)
        x = tf.keras.layers.Dense(12, activation="relu", kernel_initializer=init, bias_initializer=binit,
                                  name="hidden")(x)
        out = tf.keras.layers.Dense(5, kernel_initializer=init, bias_initializer=binit, name="predictions")(x)
        return tf.keras.Model(inp, out)

    bundle = ModelBundle.create(dense_net, name="alpha-beta-dense", preprocessing=PREPROCESSINGS["symmetric"],
                                class_names=[f"c{i}" for i in range(5)], source="test")
    with bundle.scope():
        (w1, b1), (w2, b2) = (bundle.model.get_layer(n).get_weights() for n in ("hidden", "predictions"))
    x = bundle.preprocess(images).reshape(len(images), -1).astype(np.float64)
    assert (x < 0).any() and (x > 0).any()
    hidden = np.maximum(x @ w1 + b1, 0)
    logits = hidden @ w2 + b2
    rel = np.zeros_like(logits)
    rel[:, 2] = logits[:, 2]
    expected = _alpha_beta_dense(x, w1, b1, _alpha_beta_dense(hidden, w2, b2, rel, alpha, beta, bias), alpha, beta,
                                 bias)
    ours = explain(bundle, method_id, images, Target.of_class(2)).raw[:, 0].reshape(len(images), -1)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    assert np.abs(expected).max() > 0


def test_integrated_gradients_completeness_on_batchnorm_model(resnet):
    from xai_core.methods.gradient import reference_input

    bundle, imgs = resnet
    x = bundle.preprocess(imgs)
    cls = bundle.logits(x).argmax(1)
    e = explain(bundle, "integrated_gradients", imgs, Target.predicted(), {"steps": 64})
    delta = bundle.neuron_scores(x, None, cls) - bundle.neuron_scores(
        np.repeat(reference_input(bundle, "black"), 3, axis=0), None, cls)
    np.testing.assert_allclose(e.raw.sum(axis=(1, 2, 3, 4)), delta, rtol=0.05)


# --------------------------------------------------------------------------- meaning
def _fd_gradient(bundle, x, cls, positions, h=1e-3):
    out = []
    for (r, c, ch) in positions:
        plus, minus = x.copy(), x.copy()
        plus[0, r, c, ch] += h
        minus[0, r, c, ch] -= h
        fp, fm = bundle.neuron_scores(np.concatenate([plus, minus]), None, [cls, cls])
        out.append((fp - fm) / (2 * h))
    return np.array(out)


def test_gradient_matches_finite_differences(tiny, images):
    x = tiny.preprocess(images[:1]).astype(np.float64).astype(np.float32)
    e = explain(tiny, "gradient", images[:1], Target.of_class(1))
    raw = e.raw[0, 0]
    rng = np.random.default_rng(0)
    positions = [tuple(rng.integers(0, s) for s in raw.shape) for _ in range(12)]
    fd = _fd_gradient(tiny, x, 1, positions)
    analytic = np.array([raw[p] for p in positions])
    np.testing.assert_allclose(analytic, fd, rtol=0.05, atol=0.02 * np.abs(analytic).max())
    base = explain(tiny, "gradient.baseline", images[:1], Target.of_class(1))
    np.testing.assert_allclose(base.raw, e.raw, rtol=1e-4, atol=1e-6)


def test_input_times_gradient_is_input_times_gradient(tiny, images):
    g = explain(tiny, "gradient", images[:2], Target.of_class(0)).raw
    ixg = explain(tiny, "input_t_gradient", images[:2], Target.of_class(0)).raw
    x = tiny.preprocess(images[:2])
    np.testing.assert_allclose(ixg[:, 0], x * g[:, 0], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("reference", ["black", "gray"])
def test_integrated_gradients_completeness(tiny, images, reference):
    """Σ attributions ≈ f(x) − f(reference) within 5 % at 64 steps (Sundararajan et al., axiom)."""
    from xai_core.methods.gradient import reference_input

    x = tiny.preprocess(images[:4])
    target = tiny.logits(x).argmax(1)
    e = explain(tiny, "integrated_gradients", images[:4], Target.predicted(), {"steps": 64, "reference": reference})
    ref = np.repeat(reference_input(tiny, reference), 4, axis=0)
    delta = tiny.neuron_scores(x, None, target) - tiny.neuron_scores(ref, None, target)
    total = e.raw.sum(axis=(1, 2, 3, 4))
    np.testing.assert_allclose(total, delta, rtol=0.05, atol=0.01 * np.abs(delta).max())


def test_smoothgrad_noise_level_really_applies(tiny, images):
    """Our SmoothGrad: zero noise is exactly the gradient, more noise changes the map, seeds reproduce."""
    g = explain(tiny, "gradient", images[:2], Target.of_class(3)).maps
    zero = explain(tiny, "smoothgrad", images[:2], Target.of_class(3), {"noise_level": 0.0, "samples": 4}).maps
    np.testing.assert_allclose(zero, g, rtol=1e-5, atol=1e-7)
    noisy = explain(tiny, "smoothgrad", images[:2], Target.of_class(3), {"noise_level": 0.2}).maps
    assert np.abs(noisy - g).mean() > 0.05 * np.abs(g).mean()
    other_seed = explain(tiny, "smoothgrad", images[:2], Target.of_class(3), {"noise_level": 0.2, "seed": 1}).maps
    assert not np.allclose(other_seed, noisy)


def test_innvestigate_smoothgrad_ignores_noise_scale(tiny, images):
    """Why we wrap SmoothGrad: iNNvestigate 2.1.2's own analyzer with noise_scale=0 is not the gradient."""
    import innvestigate

    x = tiny.preprocess(images[:1])
    with tiny.scope():
        analyzer = innvestigate.create_analyzer("smoothgrad", tiny.model, neuron_selection_mode="index",
                                                noise_scale=0.0, augment_by_n=4)
        theirs = analyzer.analyze(x, neuron_selection=np.array([0]))
    ours = explain(tiny, "gradient", images[:1], Target.of_class(0)).raw[:, 0]
    rel = np.abs(theirs - ours).mean() / np.abs(ours).mean()
    assert rel > 0.2, rel


def _independent_gradcam(bundle, x, cls, layer):
    """Grad-CAM computed from scratch with Keras backend functions, no code shared with xai_core.methods.cam."""
    with bundle.scope():
        acts_t = bundle.model.get_layer(layer).output
        score = bundle.model.output[:, cls]
        grads_t = tf.keras.backend.gradients(tf.reduce_sum(score), acts_t)[0]
        fn = tf.keras.backend.function([bundle.model.input], [acts_t, grads_t])
        acts, grads = fn([x])
    out = []
    for a, g in zip(acts, grads):
        alpha = [g[:, :, k].sum() / (g.shape[0] * g.shape[1]) for k in range(g.shape[2])]
        cam = sum(alpha[k] * a[:, :, k] for k in range(a.shape[2]))
        out.append(np.where(cam > 0, cam, 0))
    return np.array(out)


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_gradcam_equals_independent_computation(tiny, images, layer):
    x = tiny.preprocess(images[:3])
    ours = gradcam(tiny, x, Selection(None, [4, 4, 4]), layer=layer, upsample=False)
    expected = _independent_gradcam(tiny, x, 4, layer)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)
    full = explain(tiny, "gradcam", images[:3], Target.of_class(4), {"layer": layer}).maps
    assert full.shape == (3, 1, 16, 16) and full.min() >= 0


def test_gradcam_default_layer_and_bad_layer(tiny, images):
    default = explain(tiny, "gradcam", images[:1], Target.of_class(0)).maps
    conv2 = explain(tiny, "gradcam", images[:1], Target.of_class(0), {"layer": "conv2"}).maps
    np.testing.assert_array_equal(default, conv2)  # last spatial layer before the output
    with pytest.raises(InvalidParameterError, match="spatial"):
        explain(tiny, "gradcam", images[:1], Target.of_class(0), {"layer": "flatten"})
    with pytest.raises(InvalidParameterError, match="no layer named"):
        explain(tiny, "gradcam", images[:1], Target.of_class(0), {"layer": "nope"})


def test_counterfactual_gradcam_is_negated_gradients(tiny, images):
    x = tiny.preprocess(images[:2])
    sel = Selection(None, [1, 1])
    pos = gradcam(tiny, x, sel, layer="conv2", upsample=False)
    neg = gradcam(tiny, x, sel, layer="conv2", counterfactual=True, upsample=False)
    assert pos.min() >= 0 and neg.min() >= 0
    assert not np.any((pos > 0) & (neg > 0)), "a location cannot both support and oppose the class"


def test_occluding_top_patch_lowers_score_most(tiny, images):
    """With stride = patch the map is the score drop of each patch: occluding the top patch must lower the class
    score more than occluding the lowest-scored one."""
    patch = 4
    e = explain(tiny, "occlusion", images[:3], Target.of_class(2), {"patch": patch, "stride": patch, "fill": "black"})
    x = tiny.preprocess(images[:3])
    for i in range(3):
        m = e.maps[i, 0]
        cells = {(r, c): m[r:r + patch, c:c + patch].mean() for r in range(0, 16, patch) for c in range(0, 16, patch)}
        top, low = max(cells, key=cells.get), min(cells, key=cells.get)
        occluded = []
        for r, c in (top, low):
            xi = x[i:i + 1].copy()
            xi[0, r:r + patch, c:c + patch] = 0.0
            occluded.append(tiny.neuron_scores(xi, None, [2])[0])
        base = tiny.neuron_scores(x[i:i + 1], None, [2])[0]
        assert base - occluded[0] > base - occluded[1]
        np.testing.assert_allclose(base - occluded[0], cells[top], rtol=1e-4, atol=1e-5)


def test_patch_positions_cover_the_image():
    assert patch_positions(16, 4, 4) == [0, 4, 8, 12]
    assert patch_positions(10, 4, 3) == [0, 3, 6]
    assert patch_positions(11, 4, 3) == [0, 3, 6, 7]
    with pytest.raises(InvalidParameterError):
        patch_positions(4, 8, 2)


def test_lrp_epsilon_conserves_the_logit_on_bias_free_net(tiny_nobias, images):
    x = tiny_nobias.preprocess(images)
    cls = tiny_nobias.logits(x).argmax(1)
    logit = tiny_nobias.neuron_scores(x, None, cls)
    e = explain(tiny_nobias, "lrp.epsilon", images, Target.predicted(), {"epsilon": 1e-9})
    np.testing.assert_allclose(e.raw.sum(axis=(1, 2, 3, 4)), logit, rtol=0.02)


def test_lrp_z_equals_input_times_gradient_on_bias_free_relu_net(tiny_nobias, images):
    a = explain(tiny_nobias, "lrp.z", images[:3], Target.of_class(1)).maps
    b = explain(tiny_nobias, "input_t_gradient", images[:3], Target.of_class(1)).maps
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * np.abs(b).max())


# --------------------------------------------------------------------------- targets
def test_top_neurons_are_the_most_activated(tiny, images):
    e = explain(tiny, "gradient", images[:3], Target.top_neurons("conv2", 4))
    assert e.maps.shape == (3, 4, 16, 16)
    acts = tiny.activations(tiny.preprocess(images[:3]), "conv2")
    for i in range(3):
        assert list(e.indices[i]) == list(np.argsort(-acts[i], kind="stable")[:4])
        assert acts[i, e.indices[i, 0]] >= acts[i, e.indices[i, 3]]
    assert e.layer == "conv2" and "conv2 neuron" in e.labels[0][0]


def test_neuron_map_stays_in_receptive_field(tiny, images):
    """A neuron of conv1 (3×3 kernel) at (row 5, col 7) depends on input rows 5–7 and columns 7–9 only."""
    from xai_core.methods import flat_neuron_index

    idx = flat_neuron_index(tiny.layer("conv1").output_shape, (5, 7, 2))
    for method in ("gradient", "lrp.epsilon", "integrated_gradients"):
        m = explain(tiny, method, images[:1], Target.neuron("conv1", idx)).maps[0, 0]
        outside = m.copy()
        outside[5:8, 7:10] = 0
        assert np.all(outside == 0), method


def test_predicted_target_explains_the_argmax(tiny, images):
    e = explain(tiny, "gradient", images, Target.predicted())
    assert list(e.indices[:, 0]) == list(tiny.predict(images).argmax(1))
    assert e.labels[0][0].endswith(f"(class {e.indices[0, 0]})")


def test_scores_the_caller_has_replace_the_forward_pass(tiny, images, monkeypatch):
    """A data set's cached pass hands explain() the images' logits: the target and the conservation check use
    them, the model is not asked again, and a method's result is the one it gives without them."""
    x = tiny.preprocess(images)
    logits = tiny.logits(x)
    without = {m: explain(tiny, m, images, Target.predicted()) for m in ("gradient", "lrp.epsilon")}
    swapped = logits[:, ::-1].copy()  # another argmax: proof that the given scores are the ones used
    monkeypatch.setattr(type(tiny), "logits", lambda *a, **k: pytest.fail("the model was asked for its logits"))
    for method_id, ref in without.items():
        given = explain(tiny, method_id, images, Target.predicted(), logits=logits)
        np.testing.assert_array_equal(given.maps, ref.maps)
        assert given.warnings == ref.warnings
        assert list(explain(tiny, method_id, images, Target.predicted(), logits=swapped).indices[:, 0]) == \
            list(swapped.argmax(1))
    with pytest.raises(InvalidParameterError, match="logits of shape"):
        explain(tiny, "gradient", images, Target.predicted(), logits=logits[:1])


@pytest.mark.parametrize("target, message", [
    (Target.of_class(5), "out of range"),
    (Target.of_class(-1), "out of range"),
    (Target.neuron("conv2", 10_000), "out of range"),
    (Target.neuron("image", 0), "cannot explain neurons"),
    (Target.neuron("missing", 0), "no layer named"),
    (Target.top_neurons("conv2", 3), "Top-k"),
])
def test_bad_targets_raise_readable_errors(tiny, images, target, message):
    with pytest.raises(InvalidParameterError, match=message):
        explain(tiny, "gradient", images[:1], target)


@pytest.mark.parametrize("params, message", [
    ({"steps": 1}, "between"),
    ({"steps": "many"}, "integer"),
    ({"reference": "purple"}, "one of"),
    ({"noise": 1}, "no parameter"),
])
def test_bad_parameters_raise_readable_errors(tiny, images, params, message):
    with pytest.raises(InvalidParameterError, match=message):
        explain(tiny, "integrated_gradients", images[:1], Target.of_class(0), params)


def test_unknown_method_lists_valid_ones(tiny, images):
    with pytest.raises(InvalidParameterError, match="gradient"):
        explain(tiny, "no.such.method", images[:1])


def test_wrong_image_shape_is_a_readable_error(tiny):
    with pytest.raises(InvalidParameterError, match="Expected images of shape"):
        explain(tiny, "gradient", np.zeros((1, 8, 8, 3), np.float32))


# --------------------------------------------------------------------------- support checks
def test_relu_only_methods_not_offered_for_swish_nets(images):
    swish = make_bundle(lambda: tiny_cnn(activation="swish", seed=3), "tiny-swish")
    offered = methods_for(swish)
    for mid in ("deconvnet", "guided_backprop", "deep_taylor", "deep_taylor.bounded", "gradcam.guided"):
        assert mid not in offered, mid
        assert "ReLU" in unsupported_reason(swish, mid)
        with pytest.raises(UnsupportedMethodError):
            explain(swish, mid, images[:1])
    for mid in ("gradient", "integrated_gradients", "gradcam", "occlusion", "lrp.epsilon"):
        assert mid in offered, mid
        assert np.all(np.isfinite(explain(swish, mid, images[:1]).maps))


def test_cam_not_offered_without_spatial_layers(images):
    def dense_only():
        inp = tf.keras.Input((16, 16, 3))
        x = tf.keras.layers.Flatten()(inp)
        return tf.keras.Model(inp, tf.keras.layers.Dense(5)(tf.keras.layers.Dense(8, activation="relu")(x)))

    bundle = make_bundle(dense_only, "dense")
    assert bundle.head == "none"
    offered = methods_for(bundle)
    assert "gradcam" not in offered and "gradcam.counterfactual" not in offered
    assert "gradient" in offered and "lrp.epsilon" in offered


def test_lrp_warning_checks_no_longer_abort(images):
    """iNNvestigate bug: warning-type model checks raise NotImplementedError. A keras.layers.ReLU layer (missing
    from iNNvestigate's CONVNET_LAYERS, as in MobileNet) made every LRP variant fail; with our fix it runs."""
    import innvestigate

    from xai_core.compat import innvestigate as innvestigate_compat

    def relu_layer_net():
        inp = tf.keras.Input((16, 16, 3))
        x = tf.keras.layers.Conv2D(4, 3)(inp)
        x = tf.keras.layers.ReLU(max_value=6.0)(x)
        x = tf.keras.layers.GlobalAveragePooling2D()(x)
        return tf.keras.Model(inp, tf.keras.layers.Dense(5)(x))

    bundle = make_bundle(relu_layer_net, "relu6")
    # the original behaviour, for the record
    with bundle.scope(), innvestigate_compat.original("model_checks"), pytest.raises(NotImplementedError):
        innvestigate.create_analyzer("lrp.epsilon", bundle.model)
    assert "lrp.epsilon" in methods_for(bundle)
    e = explain(bundle, "lrp.epsilon", images[:2])
    assert np.all(np.isfinite(e.maps)) and np.any(e.maps != 0)


def test_deconvnet_on_relu_layers(images):
    """iNNvestigate bug: Deconvnet rebuilt each keras.layers.ReLU with an ``activation`` argument it does not take
    ("Keyword argument not understood"), so it failed on MobileNet-style nets. It now runs, and on a net whose ReLU
    is a separate layer it equals the same net with the ReLU inside the convolution (one function, two spellings)."""
    from xai_core.compat import innvestigate as innvestigate_compat

    def net(separate: bool):
        def build():
            tf.keras.utils.set_random_seed(11)
            inp = tf.keras.Input((16, 16, 3))
            x = tf.keras.layers.Conv2D(4, 3, activation=None if separate else "relu", name="conv")(inp)
            x = tf.keras.layers.ReLU()(x) if separate else x
            x = tf.keras.layers.GlobalAveragePooling2D()(x)
            return tf.keras.Model(inp, tf.keras.layers.Dense(5, name="out")(x))

        return build

    separate, inside = make_bundle(net(True), "deconv-relu-layer"), make_bundle(net(False), "deconv-relu-inside")
    with separate.scope(), innvestigate_compat.original("deconvnet_relu_init"):
        import innvestigate

        with pytest.raises(TypeError, match="activation"):
            innvestigate.create_analyzer("deconvnet", separate.model).create_analyzer_model()
    a = explain(separate, "deconvnet", images[:3], Target.of_class(1)).maps
    b = explain(inside, "deconvnet", images[:3], Target.of_class(1)).maps
    assert np.abs(a).max() > 0
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(b).max())


# --------------------------------------------------------------------------- caching and threads
class _Interrupted(BaseException):
    """Stands in for Streamlit's RerunException / StopException (BaseExceptions raised into a running script when
    fastReruns stops it, e.g. from a progress callback)."""


def test_an_interrupted_build_caches_nothing(monkeypatch, images):
    """Community Cloud forces fastReruns: a rerun may stop a script in the middle of building an analyzer. Nothing
    half-built is cached, the method is not marked unsupported, and the next request builds it fully (an
    iNNvestigate analyzer: LRP-α1β0)."""
    from tiny_models import make_bundle, tiny_cnn

    from xai_core.methods import _innvestigate, unsupported_reason

    bundle = make_bundle(tiny_cnn, "interrupted-build")
    real = _innvestigate.initialize_new_variables
    calls = []

    def stopped_once(session, since=0, fetches=None):
        calls.append(1)
        if len(calls) == 1:
            raise _Interrupted
        return real(session, since, fetches)

    monkeypatch.setattr(_innvestigate, "initialize_new_variables", stopped_once)
    with pytest.raises(_Interrupted):
        explain(bundle, "lrp.alpha_1_beta_0", images[:2])
    assert not [k for k in bundle._cache if isinstance(k, tuple) and k[0] == "analyzer"], "nothing half-built kept"
    assert unsupported_reason(bundle, "lrp.alpha_1_beta_0") is None
    maps = explain(bundle, "lrp.alpha_1_beta_0", images[:2]).maps
    assert np.isfinite(maps).all() and np.abs(maps).max() > 0 and len(calls) == 2
    with pytest.raises(_Interrupted):
        bundle.cached(("stopped",), lambda: (_ for _ in ()).throw(_Interrupted()))
    assert not bundle.is_cached(("stopped",))


@pytest.mark.parametrize("method_id", ["gradient", "lrp.epsilon", "deep_taylor", "guided_backprop", "input"])
def test_direct_session_run_equals_innvestigate_analyze(tiny, images, method_id):
    """Our fast path (feeding the built analyzer graph with session.run) gives what analyzer.analyze gives."""
    from xai_core.methods._innvestigate import built_analyzer

    ours = explain(tiny, method_id, images, Target.of_class(3)).raw[:, 0]
    spec = get_method(method_id)
    built = {"epsilon": spec.defaults()["epsilon"]} if method_id == "lrp.epsilon" else {}  # as explain() builds it
    analyzer = built_analyzer(tiny, method_id, spec.innvestigate_name, None, **built)
    with tiny.scope():
        theirs = analyzer.analyze(tiny.preprocess(images), neuron_selection=np.full(7, 3))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)



@pytest.mark.parametrize(("method_id", "params", "name", "built"), [
    ("gradient", {}, "gradient", {}),
    ("input_t_gradient", {}, "input_t_gradient", {}),
    ("integrated_gradients", {"steps": 5, "reference": "gray"}, "integrated_gradients", {"steps": 5}),
])
def test_shared_gradient_methods_equal_innvestigates_analyzers(tiny, images, method_id, params, name, built):
    """The plain-gradient methods run on one shared ``tf.gradients`` graph (xai_core.methods.gradient), not on
    iNNvestigate's analyzers; their maps are those analyzers' maps, for a hidden-layer neuron too."""
    from xai_core.methods._innvestigate import built_analyzer
    from xai_core.methods.gradient import reference_input

    if method_id == "integrated_gradients":
        built["reference_inputs"] = reference_input(tiny, "gray")
    layer = tiny.layers[-3].name
    x = tiny.preprocess(images)
    for target, selection in ((Target.of_class(3), (None, np.full(len(x), 3))),
                              (Target.neuron(layer, 5), (layer, np.full(len(x), 5)))):
        ours = explain(tiny, method_id, images, target, params).raw[:, 0]
        analyzer = built_analyzer(tiny, f"check.{method_id}", name, selection[0], **built)
        with tiny.scope():
            theirs = analyzer.analyze(x, neuron_selection=selection[1])
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * np.abs(theirs).max())
        assert np.abs(ours).max() > 0

@pytest.mark.parametrize("method_id", ["guided_backprop", "deconvnet", "lrp.epsilon", "lrp.alpha_2_beta_1",
                                       "deep_taylor", "lrp.sequential_preset_a"])
def test_analyzer_graph_without_keras_model_equals_innvestigates_own_build(resnet, method_id):
    """Analyzers are built without the Keras model (and op-layers) iNNvestigate wraps around the analysis; the
    maps equal those of an analyzer iNNvestigate builds its own way on the same (canonical) model, on a BN net."""
    import innvestigate

    from xai_core.methods._innvestigate import initialize_new_variables

    bundle, imgs = resnet
    spec = get_method(method_id)
    ours = explain(bundle, method_id, imgs, Target.of_class(2)).raw[:, 0]
    built = {"epsilon": spec.defaults()["epsilon"]} if method_id == "lrp.epsilon" else {}
    with bundle.scope():
        model = bundle.canonical_model(None).model
        theirs_analyzer = innvestigate.create_analyzer(spec.innvestigate_name, model, neuron_selection_mode="index",
                                                       **built)
        theirs_analyzer.create_analyzer_model()
        initialize_new_variables(bundle.session)
        theirs = theirs_analyzer.analyze(bundle.preprocess(imgs), neuron_selection=np.full(len(imgs), 2))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * np.abs(theirs).max())
    assert np.abs(ours).max() > 0
    # the stand-in weights of the rules' layer copies were all replaced by the real ones
    from xai_core.methods._innvestigate import _ops_needed

    analyzers = [v for k, v in bundle._cache.items()
                 if isinstance(k, tuple) and k[:2] == ("analyzer", spec.innvestigate_name)]
    if method_id == "lrp.epsilon":  # one reverse pass over the forward tensors (methods/lrp_reverse.py)
        assert not analyzers, "LRP-ε built an iNNvestigate analyzer instead of its reverse pass"
        return
    needed = _ops_needed(analyzers[0]._analyzer_model.outputs)
    assert not [name for name in needed if "stand_in" in name]

def test_analyzer_build_hooks_act_only_in_the_thread_that_builds():
    """While one session's thread builds an analyzer (no Keras op-layers, rules' layer copies with stand-in
    weights), a model built at the same moment in another thread gets real variables and Keras history: the
    hooks consult per-thread flags rather than swapping Keras' functions for every thread."""
    from tf_keras.src.engine import base_layer_utils

    from xai_core.compat import innvestigate as innvestigate_compat
    from xai_core.compat import keras as keras_compat

    def probe() -> tuple[bool, list[bool]]:
        with tf.Graph().as_default():
            tensor = tf.square(tf.keras.Input((3,)))  # a plain op on a Keras input: would need an op-layer
            layer = tf.keras.layers.Dense(2)
            layer.build((None, 3))
            return (bool(base_layer_utils.needs_keras_history([tensor])),
                    [isinstance(w, tf.Variable) for w in layer.weights])

    inside, release, seen = threading.Event(), threading.Event(), {}

    def builder() -> None:
        with innvestigate_compat.building_analyzer(), keras_compat.stand_in_weights():
            seen["builder"] = probe()
            inside.set()
            release.wait(30)

    thread = threading.Thread(target=builder)
    thread.start()
    try:
        assert inside.wait(30)
        assert probe() == (True, [True, True])  # this thread: Keras as it is
    finally:
        release.set()
        thread.join(30)
    assert seen["builder"] == (False, [False, False])  # the building thread: hooks on
    assert probe() == (True, [True, True])  # and nothing left behind


def test_analyzer_built_once_and_shared_across_classes(tiny, images):
    explain(tiny, "lrp.alpha_2_beta_1", images[:1], Target.of_class(0))
    keys = [k for k in tiny._cache if isinstance(k, tuple) and k[0] == "analyzer" and k[1] == "lrp.alpha_2_beta_1"]
    analyzer = tiny._cache[keys[0]]
    n_ops = len(tiny.graph.get_operations())
    for cls in range(5):
        explain(tiny, "lrp.alpha_2_beta_1", images[:2], Target.of_class(cls))
    assert len([k for k in tiny._cache if isinstance(k, tuple) and k[:2] == ("analyzer", "lrp.alpha_2_beta_1")]) == 1
    assert tiny._cache[keys[0]] is analyzer
    assert len(tiny.graph.get_operations()) == n_ops, "a repeated request must not grow the graph"


def test_augmented_methods_get_smaller_batches(tiny):
    """Integrated gradients multiplies the batch by its steps: images per call shrink to stay within memory."""
    from xai_core.methods.explain import PASS_BUDGET_224, images_per_call

    ig, grad = get_method("integrated_gradients"), get_method("gradient")
    budget = int(PASS_BUDGET_224 * 224 * 224 / (16 * 16))
    assert images_per_call(tiny, grad, {}, 32) == 32
    assert images_per_call(tiny, ig, {"steps": 256}, 32) == min(32, budget // 256)
    assert images_per_call(tiny, ig, {"steps": 256}, 32) * 256 <= budget


def test_runtime_parameters_do_not_rebuild(tiny, images):
    explain(tiny, "smoothgrad", images[:1], params={"noise_level": 0.1})
    n_ops = len(tiny.graph.get_operations())
    explain(tiny, "smoothgrad", images[:1], params={"noise_level": 0.3, "seed": 5})
    explain(tiny, "occlusion", images[:1], params={"fill": "blur"})
    n_ops2 = len(tiny.graph.get_operations())
    explain(tiny, "occlusion", images[:1], params={"fill": "gray"})
    assert len(tiny.graph.get_operations()) == n_ops2 and n_ops2 >= n_ops


def test_maps_from_four_threads_equal_serial_maps(images):
    bundle = make_bundle(lambda: tiny_cnn(seed=7), "tiny-threads")
    jobs = [("gradient", Target.of_class(0)), ("lrp.epsilon", Target.of_class(1)), ("gradcam", Target.of_class(2)),
            ("occlusion", Target.of_class(3)), ("integrated_gradients", Target.predicted()),
            ("guided_backprop", Target.top_neurons("conv2", 4)), ("smoothgrad", Target.of_class(4)),
            ("deep_taylor", Target.of_class(0))]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for j in range(len(jobs)):  # every thread runs every job, each in its own rotated order
                k = (j + 2 * worker) % len(jobs)
                mid, target = jobs[k]
                results[(worker, k)] = explain(bundle, mid, images, target).maps
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for k, (mid, target) in enumerate(jobs):
        serial = explain(bundle, mid, images, target).maps
        for w in range(4):
            np.testing.assert_allclose(results[(w, k)], serial, rtol=1e-5, atol=1e-6, err_msg=mid)
