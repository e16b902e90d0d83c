"""Class activation maps: Grad-CAM, Guided Grad-CAM and counterfactual Grad-CAM, on any spatial layer.

Graph-mode: the feature-map and gradient tensors are built once per (feature layer, target layer) and cached
in the bundle; each request is one batched ``session.run``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image

from xai_core.errors import InvalidParameterError
from xai_core.methods import steps
from xai_core.methods._innvestigate import analyze, built_analyzer
from xai_core.methods.base import MethodSpec, Param, Selection, register, unsupported_reason
from xai_core.models.bundle import ModelBundle

_REF = "Selvaraju et al. 2017, Grad-CAM: Visual Explanations from Deep Networks via Gradient-based " \
       "Localization, ICCV."

LAYER = Param("layer", "layer", None, "Feature layer",
              "Convolutional layer whose feature maps are weighted; empty = the last spatial layer before the "
              "target (coarse but most class-specific).")


def default_feature_layer(bundle: ModelBundle, target_layer: str | None = None) -> str:
    """The last spatial layer before ``target_layer`` (None = the output)."""
    if bundle.is_output_layer(target_layer):
        limit = len(bundle.layers)
    else:
        assert target_layer is not None  # is_output_layer(None) is True
        limit = bundle.layer(target_layer).index
    candidates = [layer for layer in bundle.spatial_layers() if layer.index < limit]
    if not candidates:
        raise InvalidParameterError(
            f"Grad-CAM needs a layer with a spatial (height × width × channels) output before the target, and "
            f"model '{bundle.name}' has none there."
        )
    return candidates[-1].name


def _tensors(bundle: ModelBundle, feature_layer: str, target_layer: str | None) -> tuple[Any, Any, Any]:
    def build() -> tuple[Any, Any, Any]:
        steps.step(steps.GRADIENT_GRAPH)
        acts = bundle.layer_output(feature_layer)
        idx, score = bundle.selected_tensor(target_layer)
        grads = tf.gradients(tf.reduce_sum(score), acts)[0]
        if grads is None:
            raise InvalidParameterError(
                f"The target of layer '{target_layer}' does not depend on feature layer '{feature_layer}': "
                "pick a feature layer before the target layer."
            )
        return idx, acts, grads

    return bundle.cached(("gradcam", feature_layer, target_layer), build)


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``(N, h, w)`` float maps to ``(N, H, W)``, ``size = (H, W)``."""
    if maps.shape[1:] == tuple(size):
        return maps.astype(np.float32)
    return np.stack([
        np.asarray(Image.fromarray(m.astype(np.float32)).resize(size[::-1], Image.Resampling.BILINEAR))
        for m in maps
    ]).astype(np.float32)


def gradcam(bundle: ModelBundle, x: np.ndarray, selection: Selection, *, layer: str | None,
            counterfactual: bool = False, upsample: bool = True) -> np.ndarray:
    """Grad-CAM maps ``(N, H, W)`` ≥ 0: ReLU(Σ_c α_c A_c) with α_c the spatial mean of ∂score/∂A_c.

    ``counterfactual`` negates the gradients: regions whose removal would *raise* the score.
    """
    feature_layer = layer or default_feature_layer(bundle, selection.layer)
    info = bundle.layer(feature_layer)
    if not info.spatial:
        raise InvalidParameterError(
            f"Layer '{feature_layer}' has output shape {info.output_shape}; Grad-CAM needs a spatial "
            "(height × width × channels) layer."
        )
    idx, acts_t, grads_t = _tensors(bundle, feature_layer, selection.layer)
    acts, grads = bundle.run([acts_t, grads_t], x, feed={idx: selection.indices.astype(np.int32)})
    weights = grads.mean(axis=(1, 2), keepdims=True)
    if counterfactual:
        weights = -weights
    cam = np.maximum((weights * acts).sum(axis=-1), 0.0)
    return resize_maps(cam, bundle.input_size) if upsample else cam.astype(np.float32)


def _build(bundle: ModelBundle, target_layer: str | None, *, layer: str | None) -> Any:
    """Grad-CAM's tensors for the feature ``layer`` (default: the last spatial layer before the target)."""
    feature_layer = layer or default_feature_layer(bundle, target_layer)
    if not bundle.layer(feature_layer).spatial:
        return None  # the run says why (InvalidParameterError)
    return _tensors(bundle, feature_layer, target_layer)


def _build_guided(bundle: ModelBundle, target_layer: str | None, *, layer: str | None) -> Any:
    return _build(bundle, target_layer, layer=layer), built_analyzer(bundle, "gradcam.guided", "guided_backprop",
                                                                      target_layer)


def _guided_gradcam(bundle: ModelBundle, x: np.ndarray, selection: Selection, *, layer: str | None) -> np.ndarray:
    cam = gradcam(bundle, x, selection, layer=layer)
    guided = analyze(bundle, "gradcam.guided", "guided_backprop", x, selection)
    return guided * cam[..., None]


def _needs_spatial(bundle: ModelBundle) -> str | None:
    if not bundle.spatial_layers():
        return f"Model '{bundle.name}' has no layer with a spatial output, so there is nothing to map for CAM."
    return None


def _guided_support(bundle: ModelBundle) -> str | None:
    return _needs_spatial(bundle) or unsupported_reason(bundle, "guided_backprop")


register(MethodSpec(
    id="gradcam", label="Grad-CAM", family="CAM",
    summary="Which regions of a convolutional layer's feature maps support the class, weighted by the "
            "class score's average gradient per channel: coarse, class-specific heat maps.",
    caveat="Resolution of the chosen layer only (e.g. 7×7 upsampled); misses evidence spread across regions.",
    reference=_REF, signed=False, params=(LAYER,), feature_layer=True,
    run=lambda bundle, x, selection, layer: gradcam(bundle, x, selection, layer=layer), support=_needs_spatial,
    build=_build,
))
register(MethodSpec(
    id="gradcam.guided", label="Guided Grad-CAM", family="CAM",
    summary="Guided backprop multiplied by Grad-CAM: fine detail, restricted to the class's regions.",
    caveat="Inherits guided backprop's insensitivity to the model's weights.",
    reference=_REF, signed=True, params=(LAYER,), feature_layer=True, run=_guided_gradcam,
    support=_guided_support, build=_build_guided,
))
register(MethodSpec(
    id="gradcam.counterfactual", label="Counterfactual Grad-CAM", family="CAM",
    summary="Grad-CAM with negated gradients: regions whose evidence speaks against the class.",
    caveat="Shows what would raise the score if removed, not what the model looked at.",
    reference=_REF, signed=False, params=(LAYER,), feature_layer=True,
    run=lambda bundle, x, selection, layer: gradcam(bundle, x, selection, layer=layer, counterfactual=True),
    support=_needs_spatial, build=_build,
))
