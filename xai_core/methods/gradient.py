"""Gradient family: saliency, input × gradient, deconvnet, guided backprop, integrated gradients, SmoothGrad
(the Reference family, input and random, is in :mod:`xai_core.methods.reference`).

The plain-gradient methods (gradient, input × gradient, Integrated Gradients, SmoothGrad) differ only in what
they feed and how they combine the result, so one ``tf.gradients`` of the selected score serves them all, built
once per (model, target layer) by :func:`score_gradient`: on an uploaded ResNet50 (224) that graph builds in
0.4 s, where iNNvestigate's layer-by-layer reverse graph of the same gradient took 2 s and its IG wrapper more
(docs/benchmarks.md, first-map benchmark). The maps equal iNNvestigate's (tests/methods/test_methods.py).
Deconvnet, guided backprop and the autodiff baseline are iNNvestigate 2.1.2 analyzers.
"""

from __future__ import annotations

import zlib
from functools import partial
from typing import Any

import numpy as np

from xai_core.methods import steps
from xai_core.methods._innvestigate import analyze, analyzer_build, model_checks
from xai_core.methods.base import MethodSpec, Param, Selection, register
from xai_core.models.bundle import DEFAULT_BATCH_SIZE, ModelBundle

REFERENCE = Param(
    "reference", "choice", "black", "Reference input",
    "The input the attribution is measured against: a black image, the all-zero model input, or a "
    "mid-gray image.",
    choices=("black", "zeros", "gray"), builds=False,
)


def reference_input(bundle: ModelBundle, kind: str) -> np.ndarray:
    """Model-input reference image ``(1, H, W, C)`` of kind black / zeros / gray."""
    h, w, c = bundle.input_shape
    if kind == "zeros":
        return np.zeros((1, h, w, c), np.float32)
    value = 0.0 if kind == "black" else 127.5
    return bundle.preprocessing(np.full((1, h, w, c), value, np.float32))


def score_gradient(bundle: ModelBundle, layer: str | None) -> tuple[Any, Any]:
    """``(idx_placeholder, gradient)``: the gradient of the selected neuron ``idx[i]`` of ``layer`` (None = the
    logits) with respect to the model input, one graph per (bundle, layer)."""
    import tensorflow as tf

    def build() -> tuple[Any, Any]:
        steps.step(steps.GRADIENT_GRAPH)
        idx, score = bundle.selected_tensor(layer)
        (grad,) = tf.gradients(tf.reduce_sum(score), bundle.model.input)
        return idx, grad

    return bundle.cached(("score_gradient", layer), build)


def _build_gradient(bundle: ModelBundle, layer: str | None, **_params: Any) -> Any:
    return score_gradient(bundle, layer)


def gradients(bundle: ModelBundle, x: np.ndarray, selection: Selection,
              batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """∂ score_i / ∂ x_i for model input ``x``, in batches: the one gradient every plain-gradient method uses."""
    idx, grad = score_gradient(bundle, selection.layer)
    indices = np.broadcast_to(selection.indices, (len(x),)).astype(np.int32)
    first = not bundle.is_cached(("ran", "score_gradient", selection.layer))
    if first:
        steps.step(steps.FIRST_RUN)
    out = np.asarray(bundle.run(grad, x, batch_size, feed={idx: indices}), dtype=np.float32)
    if first:
        bundle.store(("ran", "score_gradient", selection.layer), True, lock=False)
    return out


def _gradient(bundle: ModelBundle, x: np.ndarray, selection: Selection, *, postprocess: str) -> np.ndarray:
    grad = gradients(bundle, x, selection)
    if postprocess == "abs":
        return np.abs(grad)
    return np.square(grad) if postprocess == "square" else grad


def _input_t_gradient(bundle: ModelBundle, x: np.ndarray, selection: Selection) -> np.ndarray:
    return x * gradients(bundle, x, selection)


def _plain(name: str, method_id: str, bundle: ModelBundle, x: np.ndarray, selection: Selection,
           **build: Any) -> np.ndarray:
    return analyze(bundle, method_id, name, x, selection, **build)


def _integrated_gradients(bundle: ModelBundle, x: np.ndarray, selection: Selection, *, steps: int,
                          reference: str) -> np.ndarray:
    """(x − x̄) × the mean gradient at ``steps`` points x̄ + α (x − x̄), α = 0, 1/steps, …, (steps − 1)/steps (the
    left Riemann sum of iNNvestigate's PathIntegrator, whose maps these equal), fed through the shared gradient
    in batches of (step, image) pairs."""
    ref = reference_input(bundle, reference)
    diff = x - ref
    alphas = np.arange(steps, dtype=np.float32) / np.float32(steps)
    total = np.zeros_like(x, dtype=np.float32)
    pairs = [(a, i) for a in range(steps) for i in range(len(x))]  # image i at step a
    for start in range(0, len(pairs), DEFAULT_BATCH_SIZE):
        chunk = pairs[start:start + DEFAULT_BATCH_SIZE]
        step, image = (np.array(c) for c in zip(*chunk))
        points = ref + alphas[step, None, None, None] * diff[image]
        grads = gradients(bundle, points.astype(np.float32), Selection(selection.layer, selection.indices[image]))
        np.add.at(total, image, grads)
    return total / steps * diff


def image_rng(image: np.ndarray, seed: int) -> np.random.Generator:
    """A random generator seeded by ``seed`` and the image's bytes: the same image gets the same noise in any
    batch, at any position, so maps never depend on how images were batched."""
    digest = zlib.crc32(np.ascontiguousarray(image, dtype=np.float32).tobytes())
    return np.random.default_rng([seed, digest])


def _smoothgrad(bundle: ModelBundle, x: np.ndarray, selection: Selection, *, samples: int,
                noise_level: float, seed: int) -> np.ndarray:
    """Average gradient over ``samples`` noisy copies of each image (Smilkov et al. 2017).

    iNNvestigate 2.1.2's SmoothGrad ignores its ``noise_scale`` (the noise std is fixed at 1.0 in input
    units, which swamps inputs scaled to [0, 1]); so the noise is drawn here, with std
    ``noise_level × (input max − input min)``, and all noisy copies go through the cached gradient
    gradient in batches. ``noise_level = 0`` gives exactly the plain gradient.
    """
    low, high = bundle.input_low_high
    std = noise_level * (high - low)
    noise = np.stack([image_rng(img, seed).normal(0.0, 1.0, size=(samples, *img.shape)) for img in x], axis=1)
    noisy = (x[None] + std * noise.astype(np.float32)).reshape(samples * len(x), *x.shape[1:])
    idx = np.tile(selection.indices, samples)
    grads = gradients(bundle, noisy, Selection(selection.layer, idx))
    return grads.reshape(samples, len(x), *grads.shape[1:]).mean(axis=0)


_SPECS = [
    MethodSpec(
        id="gradient", label="Gradient (saliency)", family="Gradient",
        summary="How much the score changes when each pixel changes slightly: the model's local sensitivity.",
        caveat="Noisy and local: large gradients need not mean large contributions, and they saturate.",
        reference="Simonyan et al. 2014, Deep Inside Convolutional Networks, arXiv:1312.6034.",
        params=(Param("postprocess", "choice", "none", "Post-processing",
                      "Keep the signed gradient, or take its absolute value or square.",
                      choices=("none", "abs", "square"), builds=False),),
        run=_gradient, build=_build_gradient, innvestigate_name="gradient",
    ),
    MethodSpec(
        id="gradient.baseline", label="Gradient (TensorFlow autodiff)", family="Gradient",
        summary="The plain gradient as iNNvestigate's autodiff wrapper computes it: a check on the gradient.",
        caveat="Same caveats as the gradient.",
        reference="Simonyan et al. 2014, arXiv:1312.6034.",
        run=partial(_plain, "gradient.baseline", "gradient.baseline"), innvestigate_name="gradient.baseline",
        build=analyzer_build("gradient.baseline", "gradient.baseline"),
    ),
    MethodSpec(
        id="input_t_gradient", label="Input × Gradient", family="Gradient",
        summary="Gradient times input: a first-order estimate of each pixel's contribution to the score.",
        caveat="Zero wherever the input is zero (black pixels can never matter), whatever the model does.",
        reference="Shrikumar et al. 2016, Not Just a Black Box, arXiv:1605.01713.",
        run=_input_t_gradient, build=_build_gradient, innvestigate_name="input_t_gradient",
    ),
    MethodSpec(
        id="deconvnet", label="DeconvNet", family="Gradient",
        summary="Projects the score back through the network, passing only positive signals at each ReLU.",
        caveat="Largely independent of the class and of the upper layers: looks like an edge detector.",
        reference="Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks, ECCV.",
        run=partial(_plain, "deconvnet", "deconvnet"), support=model_checks("deconvnet"),
        build=analyzer_build("deconvnet", "deconvnet"), innvestigate_name="deconvnet",
    ),
    MethodSpec(
        id="guided_backprop", label="Guided Backprop", family="Gradient",
        summary="Gradient where only positive gradients through positive activations pass: sharp, image-like maps.",
        caveat="Barely changes when the model's weights are randomised (Adebayo et al. 2018): "
               "it reconstructs the image more than it explains the class.",
        reference="Springenberg et al. 2015, Striving for Simplicity, arXiv:1412.6806.",
        run=partial(_plain, "guided_backprop", "guided_backprop"), support=model_checks("guided_backprop"),
        build=analyzer_build("guided_backprop", "guided_backprop"), innvestigate_name="guided_backprop",
    ),
    MethodSpec(
        id="integrated_gradients", label="Integrated Gradients", family="Gradient",
        summary="Gradients averaged along the straight path from a reference image to the input, times the "
                "difference: attributions that add up to f(input) − f(reference).",
        caveat="Depends on the reference: a black reference can never credit black pixels.",
        reference="Sundararajan et al. 2017, Axiomatic Attribution for Deep Networks, ICML.",
        params=(Param("steps", "int", 32, "Steps", "Points on the path; more is more exact and slower.",
                      min=2, max=256, step=1, builds=False), REFERENCE),
        run=_integrated_gradients, build=_build_gradient, innvestigate_name="integrated_gradients",
        augment_param="steps",
    ),
    MethodSpec(
        id="smoothgrad", label="SmoothGrad", family="Gradient",
        summary="The gradient averaged over noisy copies of the image: less speckle, same idea.",
        caveat="Too little noise keeps the speckle, too much blurs everything; the noise level matters.",
        reference="Smilkov et al. 2017, SmoothGrad: removing noise by adding noise, arXiv:1706.03825.",
        params=(
            Param("samples", "int", 16, "Samples", "Noisy copies per image.", min=1, max=128, step=1, builds=False),
            Param("noise_level", "float", 0.1, "Noise level",
                  "Noise std as a fraction of the input range (the paper suggests 0.1–0.2).",
                  min=0.0, max=1.0, step=0.01, builds=False),
            Param("seed", "int", 0, "Random seed", "Fixes the noise so maps are reproducible.",
                  min=0, max=2**31 - 1, step=1, builds=False),
        ),
        run=_smoothgrad, build=_build_gradient, innvestigate_name="gradient", augment_param="samples",
    ),
]

for _spec in _SPECS:
    register(_spec)
