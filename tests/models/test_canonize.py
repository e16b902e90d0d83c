"""Canonization (BatchNorm folding) and LRP on BatchNorm networks: exact, and what it fixes in iNNvestigate."""

from __future__ import annotations

import innvestigate
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import make_bundle

from xai_core.methods import REGISTRY, Target, explain, get_method
from xai_core.models.canonize import canonize

L = tf.keras.layers
SHAPE = (12, 12, 3)


def _trained_like(model: tf.keras.Model, seed: int = 0) -> tf.keras.Model:
    """Give every BN layer statistics far from the identity (an untrained BN hides every BN-rule bug)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            values = []
            for w in layer.weights:
                kind = w.name.split("/")[-1].split(":")[0]
                n = w.shape
                values.append({"gamma": rng.uniform(0.5, 2.0, n), "beta": rng.normal(0, 0.5, n),
                               "moving_mean": rng.normal(0, 0.5, n), "moving_variance": rng.uniform(0.2, 3.0, n)}[kind])
            layer.set_weights(values)
    return model


def _every_bn_kind() -> tf.keras.Model:
    """BN after Conv2D (+ReLU), DepthwiseConv2D, SeparableConv2D, Dense, an Add, a Concatenate, the input, a
    conv with its own ReLU, a conv read twice, and on a flat tensor; BN without γ and without β."""
    tf.keras.utils.set_random_seed(0)
    inp = L.Input(SHAPE, name="input_1")
    x0 = L.BatchNormalization(name="bn_input")(inp)  # right after the input: affine
    x = L.Conv2D(6, 3, padding="same", use_bias=False, name="c1")(x0)
    x = L.BatchNormalization(name="bn_c1")(x)  # folded, and the ReLU fused
    x = L.ReLU(name="relu1")(x)
    d = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)
    d = L.BatchNormalization(name="bn_dw", scale=False)(d)  # folded, no γ
    d = L.Activation("relu", name="relu_dw")(d)
    s = L.SeparableConv2D(6, 3, padding="same", name="sep")(d)
    s = L.BatchNormalization(name="bn_sep", center=False)(s)  # folded, no β
    a = L.Add(name="add")([x, s])
    a = L.BatchNormalization(name="bn_add")(a)  # after an Add: affine
    a = L.ReLU(name="relu_add")(a)
    r = L.Conv2D(6, 1, activation="relu", name="c_relu")(a)
    r = L.BatchNormalization(name="bn_after_relu")(r)  # the conv has its own ReLU: affine
    t = L.Conv2D(6, 1, name="c_twice")(a)
    u = L.BatchNormalization(name="bn_shared_input")(t)  # c_twice is read twice: affine
    cat = L.Concatenate(name="cat")([r, u, t])
    cat = L.BatchNormalization(name="bn_cat")(cat)  # after a Concatenate: affine
    f = L.Flatten(name="flat")(L.MaxPooling2D(name="pool")(L.ReLU(name="relu_cat")(cat)))
    h = L.Dense(10, name="fc")(f)
    h = L.BatchNormalization(name="bn_fc")(h)  # folded into the Dense
    h = L.BatchNormalization(name="bn_flat")(L.ReLU(name="relu_fc")(h))  # rank-2, after a ReLU layer: affine
    return _trained_like(tf.keras.Model(inp, L.Dense(5, name="logits")(h)))


@pytest.fixture(scope="module")
def bn_bundle():
    return make_bundle(_every_bn_kind, "every-bn")


@pytest.fixture(scope="module")
def pixels():
    return (np.random.default_rng(3).random((6, *SHAPE)) * 255).astype(np.float32)


def test_canonical_model_is_the_same_function_without_batchnorm(bn_bundle, pixels):
    x = bn_bundle.preprocess(pixels)
    with bn_bundle.scope():
        c = canonize(bn_bundle.model)
        out = c.model.predict(x, verbose=0)
    assert c.folded == [("c1", "bn_c1"), ("dw", "bn_dw"), ("sep", "bn_sep"), ("fc", "bn_fc")]
    assert c.fused_relu == ["relu1", "relu_dw", "relu_fc"]
    assert sorted(c.affine) == sorted(["bn_input", "bn_add", "bn_after_relu", "bn_shared_input", "bn_cat",
                                       "bn_flat"])
    assert not any(isinstance(layer, L.BatchNormalization) for layer in c.model.layers)
    logits = bn_bundle.logits(x)
    assert np.abs(logits).max() > 0.5
    np.testing.assert_allclose(out, logits, rtol=1e-4, atol=1e-4 * np.abs(logits).max())
    assert "folded" in c.summary() and "affine" in c.summary()


def test_sums_as_kernel_layers_are_exact_and_take_their_relu(bn_bundle, pixels):
    """``sum_rule``: every Add becomes a unit-weight DepthwiseConv2D over its stacked inputs (here fusing the ReLU
    after it), so a rule can split a sum by contributions; the function is unchanged."""
    x = bn_bundle.preprocess(pixels)
    c = bn_bundle.canonical_model(None, sum_rule=True)
    assert c.sums == ["add"] and "add_sum" in c.added_kernel_layers()
    assert not any(isinstance(layer, L.Add) for layer in c.model.layers)
    with bn_bundle.scope():
        out = c.model.predict(x, verbose=0)
    logits = bn_bundle.logits(x)
    np.testing.assert_allclose(out, logits, rtol=1e-4, atol=1e-4 * np.abs(logits).max())
    assert bn_bundle.canonical_model(None) is not c  # LRP-0/ε keep iNNvestigate's z-rule at sums


def test_user_model_is_untouched_and_canonization_is_cached(bn_bundle, pixels):
    layers = [layer.name for layer in bn_bundle.model.layers]
    with bn_bundle.scope():
        weights = [w.copy() for w in bn_bundle.model.get_weights()]
    first = bn_bundle.canonical_model(None)
    assert bn_bundle.canonical_model(bn_bundle.output_layer.name) is first  # the output layer is the logits
    assert [layer.name for layer in bn_bundle.model.layers] == layers
    with bn_bundle.scope():
        for a, b in zip(weights, bn_bundle.model.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_model_without_batchnorm_is_returned_as_is(tiny):
    with tiny.scope():
        assert canonize(tiny.model).model is tiny.model


def test_truncated_model_keeps_the_unfolded_layer(bn_bundle, pixels):
    """Explaining a neuron of ``c1`` (before its BN): the truncated model ends there, so nothing is folded into
    c1 and the canonical model still computes c1's own output."""
    x = bn_bundle.preprocess(pixels)
    c = bn_bundle.canonical_model("c1")
    assert ("c1", "bn_c1") not in c.folded and c.affine == ["bn_input"]
    with bn_bundle.scope():
        np.testing.assert_allclose(c.model.predict(x, verbose=0), bn_bundle.activations(x, "c1"), rtol=1e-4,
                                   atol=1e-5)


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([np.corrcoef(u.ravel(), v.ravel())[0, 1] for u, v in zip(a, b)])


@pytest.mark.parametrize("method_id", ["lrp.z", "lrp.epsilon"])
def test_lrp0_equals_input_times_gradient_on_every_bn_kind(bn_bundle, pixels, method_id):
    """LRP-0 = gradient × input on nets of ReLU, affine (Conv, Dense, BN), Add, Concatenate and max pooling
    layers (Ancona et al. 2018; Montavon et al. 2019). ε = 1e-9 keeps LRP-ε at LRP-0."""
    params = {"epsilon": 1e-9} if method_id == "lrp.epsilon" else {}
    lrp = explain(bn_bundle, method_id, pixels, Target.of_class(1), params).raw
    ixg = explain(bn_bundle, "input_t_gradient", pixels, Target.of_class(1)).raw
    assert _pearson(lrp, ixg).min() > 0.999
    np.testing.assert_allclose(lrp, ixg, rtol=1e-3, atol=1e-3 * np.abs(ixg).max())


def test_innvestigate_bn_rule_is_what_breaks_lrp_on_bn_nets(bn_bundle, pixels):
    """iNNvestigate 2.1.2's own BN rule on the same model (no canonization): far from gradient × input. If this
    starts to pass, iNNvestigate fixed its BN rule and canonization may no longer be needed."""
    x = bn_bundle.preprocess(pixels)
    with bn_bundle.scope():
        raw = innvestigate.create_analyzer("lrp.z", bn_bundle.model, neuron_selection_mode="index")
        maps = raw.analyze(x, neuron_selection=np.full(len(x), 1))
    ixg = explain(bn_bundle, "input_t_gradient", pixels, Target.of_class(1)).raw[:, 0]
    assert np.median(_pearson(maps, ixg)) < 0.9


@pytest.fixture(scope="module")
def demo_resnets():
    from xai_core.data.demo import load_demo_set
    from xai_core.models.demo import load_demo_model

    return {mid: (load_demo_model(mid), load_demo_set(ds, "test").images[:16].astype(np.float32))
            for mid, ds in (("digits_resnet", "digits"), ("shapes_resnet", "shapes"))}


@pytest.mark.parametrize("model_id", ["digits_resnet", "shapes_resnet"])
def test_lrp_matches_input_times_gradient_on_the_trained_demo_resnets(demo_resnets, model_id):
    """The shipped BN + residual demo models, 16 test images each: before canonization r ≈ 0.03 and |R| up to
    8,900 for a logit of 5; now every image's LRP-0 and LRP-ε map correlates with gradient × input at r ≥ 0.999."""
    bundle, imgs = demo_resnets[model_id]
    ixg = explain(bundle, "input_t_gradient", imgs).raw
    for method_id in ("lrp.z", "lrp.epsilon"):
        params = {"epsilon": 1e-9} if method_id == "lrp.epsilon" else {}
        lrp = explain(bundle, method_id, imgs, params=params).raw
        assert _pearson(lrp, ixg).min() > 0.999, method_id


RELEVANCE = [mid for mid, spec in REGISTRY.items() if spec.relevance]
#: Rules that count biases as evidence (αβ with β > 0 and bias): not conservative by construction.
BIASED_ALPHA_BETA = {"lrp.alpha_beta", "lrp.alpha_2_beta_1", "lrp.sequential_preset_b", "lrp.sequential_preset_b_flat",
                     "lrp.sequential_preset_b_flat_until_idx"}


@pytest.mark.parametrize("method_id", RELEVANCE)
def test_every_relevance_rule_is_sane_on_a_trained_bn_net(demo_resnets, method_id):
    """z⁺, αβ, w², flat, the presets and Deep Taylor on shapes_resnet (16 test images): finite, not empty, and the
    total relevance within 3× the explained logit (before canonization: up to 80× for LRP-0, 4.6× for Deep Taylor).
    αβ with biases cannot promise that (each layer may pass on up to (α + β)× its relevance): the user is told."""
    bundle, imgs = demo_resnets["shapes_resnet"]
    x = bundle.preprocess(imgs)
    cls = bundle.logits(x).argmax(1)
    logit = bundle.neuron_scores(x, None, cls)
    e = explain(bundle, method_id, imgs)
    assert np.all(np.isfinite(e.maps)) and not e.empty.any(), e.warnings
    ratio = np.abs(e.maps.sum(axis=(1, 2, 3))) / np.abs(logit)
    flagged = any("does not conserve relevance" in w for w in e.warnings)
    if method_id in BIASED_ALPHA_BETA:
        assert flagged if ratio.max() > 1000 else (ratio.max() > 100 or not flagged), (ratio.max(), e.warnings)
    else:
        assert ratio.max() <= 3.0, ratio
        assert not flagged
    if not get_method(method_id).signed:
        assert e.maps.min() >= -1e-6 * np.abs(e.maps).max()


def test_relevance_flag_matches_the_analyzers_that_run_on_the_canonical_model():
    from xai_core.methods._innvestigate import is_relevance_analyzer

    for spec in REGISTRY.values():
        if spec.innvestigate_name and spec.id not in ("smoothgrad", "gradcam.guided"):
            assert spec.relevance == is_relevance_analyzer(spec.innvestigate_name), spec.id


@pytest.mark.parametrize("method_id", ["lrp.alpha_2_beta_1_IB", "lrp.z_plus", "lrp.w_square", "deep_taylor"])
def test_elementwise_affine_layers_do_not_multiply_relevance(bn_bundle, pixels, method_id):
    """Six BN layers of the every-kind net become element-wise affine layers. A contribution-splitting rule sees one
    input there (αβ would pass on α× or −β× the relevance at each); they pass it through instead, so totals stay
    within 3× the logit."""
    x = bn_bundle.preprocess(pixels)
    cls = bn_bundle.logits(x).argmax(1)
    scale = np.maximum(np.abs(bn_bundle.neuron_scores(x, None, cls)), np.median(np.abs(bn_bundle.logits(x)), axis=1))
    e = explain(bn_bundle, method_id, pixels)
    assert np.all(np.isfinite(e.maps)) and not e.empty.all()
    assert np.abs(e.maps.sum(axis=(1, 2, 3))).max() <= 3 * scale.max(), e.maps.sum(axis=(1, 2, 3)) / scale


def test_the_warning_names_the_layers_lrp_has_no_rule_for(tiny):
    """EfficientNet-style blocks (swish, squeeze-and-excitation products) are named as the cause when LRP does not
    conserve there; ReLU networks name none."""
    from tiny_models import make_bundle

    from xai_core.methods.explain import layers_without_lrp_rule

    layers = tf.keras.layers

    def swish_se() -> tf.keras.Model:
        inp = tf.keras.Input((16, 16, 3))
        x = layers.Conv2D(8, 3, activation="swish")(inp)
        gate = layers.Conv2D(8, 1, activation="sigmoid")(layers.GlobalAveragePooling2D(keepdims=True)(x))
        x = layers.Multiply()([x, gate])
        return tf.keras.Model(inp, layers.Dense(5, activation="softmax")(layers.GlobalAveragePooling2D()(x)))

    assert layers_without_lrp_rule(tiny) == ""
    said = layers_without_lrp_rule(make_bundle(swish_se, "swish-se"))
    assert "swish" in said and "1 element-wise products" in said and "squeeze-and-excitation" in said


def _input_scalings() -> tf.keras.Model:
    """Rescaling with an offset (as before a transfer base: pixels → [−1, 1]), an adapted-like Normalization."""
    tf.keras.utils.set_random_seed(4)
    inp = L.Input(SHAPE)
    x = L.Rescaling(1 / 127.5, offset=-1.0, name="to_pm1")(inp)
    x = L.Normalization(mean=[0.1, -0.2, 0.3], variance=[0.5, 2.0, 1.5], name="norm")(x)
    x = L.Conv2D(6, 3, activation="relu", name="c1")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return tf.keras.Model(inp, L.Dense(5, name="logits")(x))


def test_rescaling_and_normalization_become_elementwise_affine_layers(pixels):
    """In pixel space LRP-0 must equal gradient × input; iNNvestigate sends relevance through a Rescaling or
    Normalization by its gradient, which drops their offset: r was 0.4-0.7 on the Keras 3 zoo's transfer model.
    As element-wise affine layers (the z-rule applies), the identity holds and the logits are unchanged."""
    bundle = make_bundle(_input_scalings, "scalings")
    c = bundle.canonical_model(None)
    assert c.scalings == ["to_pm1", "norm"] and "Rescaling/Normalization" in c.summary()
    x = bundle.preprocess(pixels)
    with bundle.scope():
        canonical = c.model.predict(x, verbose=0)
    np.testing.assert_allclose(canonical, bundle.logits(x), rtol=1e-5, atol=1e-5)
    lrp = explain(bundle, "lrp.z", pixels).raw
    ixg = explain(bundle, "input_t_gradient", pixels).raw
    r = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(lrp, ixg)]
    assert min(r) >= 0.999, r
