"""Gradient family: saliency, input × gradient, deconvnet, guided backprop, integrated gradients, SmoothGrad
(the Reference family, input and random, is in :mod:`xai_core.methods.reference`).

All are iNNvestigate 2.1.2 analyzers except SmoothGrad, which is our own wrapper around iNNvestigate's
gradient (see :func:`_smoothgrad`).
"""

from __future__ import annotations

import zlib
from functools import partial
from typing import Any

import numpy as np

from xai_core.methods._innvestigate import analyze, support_probe
from xai_core.methods.base import MethodSpec, Param, Selection, register
from xai_core.models.bundle import ModelBundle

REFERENCE = Param(
    "reference", "choice", "black", "Reference input",
    "The input the attribution is measured against: a black image, the all-zero model input, or a "
    "mid-gray image.",
    choices=("black", "zeros", "gray"),
)


def reference_input(bundle: ModelBundle, kind: str) -> np.ndarray:
    """Model-input reference image ``(1, H, W, C)`` of kind black / zeros / gray."""
    h, w, c = bundle.input_shape
    if kind == "zeros":
        return np.zeros((1, h, w, c), np.float32)
    value = 0.0 if kind == "black" else 127.5
    return bundle.preprocessing(np.full((1, h, w, c), value, np.float32))


def _plain(name: str, method_id: str, bundle: ModelBundle, x: np.ndarray, selection: Selection,
           **build: Any) -> np.ndarray:
    return analyze(bundle, method_id, name, x, selection, **build)


def _integrated_gradients(bundle: ModelBundle, x: np.ndarray, selection: Selection, *, steps: int,
                          reference: str) -> np.ndarray:
    ref = reference_input(bundle, reference)
    return analyze(bundle, "integrated_gradients", "integrated_gradients", x, selection,
                   steps=steps, reference_inputs=ref)


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
    analyzer in one batch. ``noise_level = 0`` gives exactly the plain gradient.
    """
    low, high = bundle.input_low_high
    std = noise_level * (high - low)
    noise = np.stack([image_rng(img, seed).normal(0.0, 1.0, size=(samples, *img.shape)) for img in x], axis=1)
    noisy = (x[None] + std * noise.astype(np.float32)).reshape(samples * len(x), *x.shape[1:])
    idx = np.tile(selection.indices, samples)
    grads = analyze(bundle, "smoothgrad", "gradient", noisy, Selection(selection.layer, idx))
    return grads.reshape(samples, len(x), *grads.shape[1:]).mean(axis=0)


_SPECS = [
    MethodSpec(
        id="gradient", label="Gradient (saliency)", family="Gradient",
        summary="How much the score changes when each pixel changes slightly: the model's local sensitivity.",
        caveat="Noisy and local: large gradients need not mean large contributions, and they saturate.",
        reference="Simonyan et al. 2014, Deep Inside Convolutional Networks, arXiv:1312.6034.",
        params=(Param("postprocess", "choice", "none", "Post-processing",
                      "Keep the signed gradient, or take its absolute value or square.",
                      choices=("none", "abs", "square")),),
        run=lambda bundle, x, selection, postprocess: analyze(
            bundle, "gradient", "gradient", x, selection,
            postprocess=None if postprocess == "none" else postprocess),
        innvestigate_name="gradient",
    ),
    MethodSpec(
        id="gradient.baseline", label="Gradient (TensorFlow autodiff)", family="Gradient",
        summary="The plain gradient computed by TensorFlow's own autodiff; a check on the reverse-graph version.",
        caveat="Same caveats as the gradient.",
        reference="Simonyan et al. 2014, arXiv:1312.6034.",
        run=partial(_plain, "gradient.baseline", "gradient.baseline"), innvestigate_name="gradient.baseline",
    ),
    MethodSpec(
        id="input_t_gradient", label="Input × Gradient", family="Gradient",
        summary="Gradient times input: a first-order estimate of each pixel's contribution to the score.",
        caveat="Zero wherever the input is zero (black pixels can never matter), whatever the model does.",
        reference="Shrikumar et al. 2016, Not Just a Black Box, arXiv:1605.01713.",
        run=partial(_plain, "input_t_gradient", "input_t_gradient"), innvestigate_name="input_t_gradient",
    ),
    MethodSpec(
        id="deconvnet", label="DeconvNet", family="Gradient",
        summary="Projects the score back through the network, passing only positive signals at each ReLU.",
        caveat="Largely independent of the class and of the upper layers: looks like an edge detector.",
        reference="Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks, ECCV.",
        run=partial(_plain, "deconvnet", "deconvnet"), support=support_probe("deconvnet"),
        innvestigate_name="deconvnet",
    ),
    MethodSpec(
        id="guided_backprop", label="Guided Backprop", family="Gradient",
        summary="Gradient where only positive gradients through positive activations pass: sharp, image-like maps.",
        caveat="Barely changes when the model's weights are randomised (Adebayo et al. 2018): "
               "it reconstructs the image more than it explains the class.",
        reference="Springenberg et al. 2015, Striving for Simplicity, arXiv:1412.6806.",
        run=partial(_plain, "guided_backprop", "guided_backprop"), support=support_probe("guided_backprop"),
        innvestigate_name="guided_backprop",
    ),
    MethodSpec(
        id="integrated_gradients", label="Integrated Gradients", family="Gradient",
        summary="Gradients averaged along the straight path from a reference image to the input, times the "
                "difference: attributions that add up to f(input) − f(reference).",
        caveat="Depends on the reference: a black reference can never credit black pixels.",
        reference="Sundararajan et al. 2017, Axiomatic Attribution for Deep Networks, ICML.",
        params=(Param("steps", "int", 32, "Steps", "Points on the path; more is more exact and slower.",
                      min=2, max=256, step=1), REFERENCE),
        run=_integrated_gradients, innvestigate_name="integrated_gradients", augment_param="steps",
    ),
    MethodSpec(
        id="smoothgrad", label="SmoothGrad", family="Gradient",
        summary="The gradient averaged over noisy copies of the image: less speckle, same idea.",
        caveat="Too little noise keeps the speckle, too much blurs everything; the noise level matters.",
        reference="Smilkov et al. 2017, SmoothGrad: removing noise by adding noise, arXiv:1706.03825.",
        params=(
            Param("samples", "int", 16, "Samples", "Noisy copies per image.", min=1, max=128, step=1),
            Param("noise_level", "float", 0.1, "Noise level",
                  "Noise std as a fraction of the input range (the paper suggests 0.1–0.2).",
                  min=0.0, max=1.0, step=0.01, builds=False),
            Param("seed", "int", 0, "Random seed", "Fixes the noise so maps are reproducible.",
                  min=0, max=2**31 - 1, step=1, builds=False),
        ),
        run=_smoothgrad, innvestigate_name="gradient", augment_param="samples",
    ),
]

for _spec in _SPECS:
    register(_spec)
