"""Axioms some methods promise: completeness (IG, DeepLIFT) and conservation (LRP-0/ε), checked per image.

* **Completeness** (Integrated Gradients; DeepLIFT's summation-to-delta): the attributions add up to
  ``f(x) − f(reference)``, the explained logit at the input minus at the reference input.
* **Conservation** (LRP with the z or ε rule): the relevance at the input adds up to the explained logit
  ``f(x)``. Biases absorb relevance (each neuron's bias takes its share and passes nothing down), and ε absorbs
  more, so on a model with biases a gap is expected: its size says how much of the score the biases carry.

Each check reports the sum, the expected value, the relative error ``|sum − expected| / |expected|`` and whether
it is within the axiom's tolerance.

Ref. Sundararajan et al. 2017, Axiomatic Attribution for Deep Networks, ICML (completeness, 5 % check);
Shrikumar et al. 2017, Learning Important Features Through Propagating Activation Differences, ICML;
Bach et al. 2015, PLoS ONE 10(7):e0130140 and Montavon et al. 2019, LRP: An Overview (conservation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xai_core.methods import REGISTRY, get_method
from xai_core.models.bundle import ModelBundle
from xai_core.quality.base import as_images, as_maps

#: Columns of :func:`check_axiom`'s frame.
COLUMNS = ["image_id", "method", "axiom", "value", "expected", "rel_error", "tolerance", "passed"]


@dataclass(frozen=True)
class Axiom:
    """What a method promises about the sum of its map, and how exactly."""

    name: str  # "completeness" or "conservation"
    statement: str
    tolerance: float  # largest relative error that passes
    note: str = ""


COMPLETENESS = Axiom(
    "completeness", "Σ attribution = f(x) − f(reference)", 0.05,
    "Integrated Gradients approximates a path integral with a finite number of steps: more steps, smaller error "
    "(Sundararajan et al. suggest checking it is within 5 %).")
DEEPLIFT_COMPLETENESS = Axiom(
    "completeness", "Σ attribution = f(x) − f(reference)", 0.01,
    "Exact up to float error on the networks DeepLIFT is offered for (linear layers, max pooling, elementwise "
    "activations).")
CONSERVATION = Axiom(
    "conservation", "Σ relevance = f(x)", 0.05,
    "Biases and ε absorb relevance: on a model with biases the sum falls short of the logit by what they carry; "
    "exact (up to ε) only on bias-free networks.")


def axiom_for(method_id: str, params: dict[str, Any] | None = None, bundle: ModelBundle | None = None
              ) -> Axiom | None:
    """The axiom ``method_id`` (with ``params``) promises, or None when it promises none."""
    params = params or {}
    if method_id == "integrated_gradients":
        return COMPLETENESS
    if method_id == "deeplift" and "deeplift" in REGISTRY:
        return DEEPLIFT_COMPLETENESS
    if method_id in ("lrp.z", "lrp.epsilon"):
        return CONSERVATION
    if method_id == "lrp" and params.get("rule", get_method("lrp").param("rule").default) in ("Z", "Epsilon"):
        return CONSERVATION
    return None


def expected_sum(bundle: ModelBundle, method_id: str, images: np.ndarray, targets: np.ndarray,
                 params: dict[str, Any] | None = None, layer: str | None = None) -> np.ndarray:
    """``(N,)`` what the map of ``method_id`` should add up to for each image (see :func:`axiom_for`)."""
    axiom = axiom_for(method_id, params, bundle)
    if axiom is None:
        raise ValueError(f"{method_id} promises no axiom")
    resolved = get_method(method_id).resolve_params(params)
    x = bundle.preprocess(images)
    f_x = bundle.neuron_scores(x, layer, targets)
    if axiom.name == "conservation":
        return f_x
    if method_id == "integrated_gradients":
        from xai_core.methods.gradient import reference_input

        ref = np.repeat(reference_input(bundle, resolved["reference"]), len(x), axis=0)
    else:
        from xai_core.methods.deeplift import reference_images

        ref = reference_images(bundle, x, resolved["reference"])
    return f_x - bundle.neuron_scores(ref, layer, targets)


def check_axiom(bundle: ModelBundle, method_id: str, images: np.ndarray, maps: np.ndarray,
                targets: Sequence[int] | np.ndarray, params: dict[str, Any] | None = None,
                image_ids: Sequence[str] | None = None, layer: str | None = None) -> pd.DataFrame:
    """Check the axiom of ``method_id`` on its ``maps`` (channel-summed, ``(N, H, W)``) for ``images``.

    Parameters
    ----------
    images : raw pixels ``(N, H, W, C)``; ``targets`` : the explained class (or neuron of ``layer``) per image.

    Returns
    -------
    One row per image with :data:`COLUMNS`; empty when the method promises no axiom.

    Ref. Sundararajan et al. 2017 (ICML); Bach et al. 2015 (PLoS ONE).
    """
    axiom = axiom_for(method_id, params, bundle)
    if axiom is None:
        return pd.DataFrame(columns=COLUMNS)
    images = as_images(bundle, images)
    maps = as_maps(maps, images)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    value = maps.astype(np.float64).sum(axis=(1, 2))
    expected = expected_sum(bundle, method_id, images, targets, params, layer).astype(np.float64)
    rel = np.abs(value - expected) / np.maximum(np.abs(expected), 1e-6)
    ids = list(image_ids) if image_ids is not None else [f"image {i}" for i in range(len(images))]
    return pd.DataFrame({"image_id": ids, "method": method_id, "axiom": axiom.name, "value": value,
                         "expected": expected, "rel_error": rel, "tolerance": axiom.tolerance,
                         "passed": rel <= axiom.tolerance}, columns=COLUMNS)
