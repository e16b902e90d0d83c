"""Sanity check: cascading weight randomisation, from the top layer down.

A map that explains *the model* must change when the model's weights are destroyed. Step k re-initialises the
weights of the k top-most layers that have weights (the logits layer first), keeps the rest, recomputes the
method's maps for the same images and classes, and measures the Spearman rank correlation with the original
maps. Maps that stay highly correlated while the model is being destroyed reflect the input (edges, colours), not
what the model learned: such a method is flagged **insensitive to the model**.

Each randomised model is a fresh :class:`~xai_core.models.bundle.ModelBundle` (own graph and session), cloned from the
original's config and weights, used for one step and closed right away, so the original model's graph never
grows and at most one copy is in memory.

Re-initialisation (what Keras does for a new layer, drawn from a seeded numpy generator so results reproduce):
kernels Glorot-uniform, biases zero, BatchNormalization reset to identity (γ = 1, β = 0, mean 0, variance 1);
any other weight is shuffled. A layer gets the same random weights at every step of the cascade.

Ref. Adebayo et al. 2018, Sanity Checks for Saliency Maps, NeurIPS.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from xai_core.errors import InvalidParameterError
from xai_core.methods import get_method
from xai_core.models.bundle import ModelBundle
from xai_core.quality.base import Progress, as_images, class_maps, digest, predicted_classes

#: A method is flagged "insensitive to the model" when the rank correlation of its (signed) maps with the original
#: ones, averaged over images and over every step of the cascade, exceeds this. The average over the cascade, not
#: the last step alone, because the telling failure is a map that survives the randomisation of the *upper*
#: layers (Adebayo et al. 2018, guided backprop): on the demo shapes CNN guided backprop keeps ρ ≥ 0.6 until only
#: conv1 is left and drops to 0.32 at the very end (cascade mean 0.71), while the gradient is at ρ ≈ 0 from the
#: first step (cascade mean −0.02). 0.5 sits between "decorrelated" and "barely changed".
INSENSITIVE_THRESHOLD = 0.5
#: How to read the check (shown beside its results on the Trust page and in its report).
HOW_TO_READ = (
    "Cascading randomisation (Adebayo et al. 2018): the layers' weights are re-initialised from the top down, one more "
    "layer per step, and the maps are compared with the original ones (Spearman rank correlation). A map that barely "
    "changes while the model is destroyed shows the image, not the model.")
#: Results measured on the demo models by ``scripts/sanity_demo.py`` (shown on the Methods page).
DEMO_RESULTS = Path(__file__).with_name("sanity_demo.json")


def weighted_layers(bundle: ModelBundle) -> list[str]:
    """Names of the layers that have weights, top (output) first: the cascade's order."""
    with bundle.scope():
        return [layer.name for layer in reversed(bundle.model.layers) if layer.weights]


def _glorot(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = np.sqrt(6.0 / max(1, fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def reinitialised(name: str, value: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A fresh value for weight ``name`` (Keras variable name) shaped like ``value`` (see module docstring)."""
    short = name.rsplit("/", 1)[-1].split(":")[0]
    if short in ("gamma", "moving_variance"):
        return np.ones_like(value)
    if short in ("beta", "moving_mean", "bias"):
        return np.zeros_like(value)
    if value.ndim >= 2:
        return _glorot(value.shape, rng).astype(value.dtype)
    return rng.permutation(value.ravel()).reshape(value.shape).astype(value.dtype)


def randomized_bundle(bundle: ModelBundle, layers: Collection[str], seed: int = 0) -> ModelBundle:
    """A copy of ``bundle``'s model, in a new graph, with the weights of ``layers`` re-initialised.

    Close it (:meth:`~xai_core.models.bundle.ModelBundle.close`) after use: it owns a graph and a session.
    """
    layers = set(layers)
    with bundle.scope():
        config = bundle.model.get_config()
        custom = {type(layer).__name__: type(layer) for layer in bundle.model.layers}
        weights = {}
        for layer in bundle.model.layers:
            values = layer.get_weights()
            if layer.name in layers:
                rng = np.random.default_rng([seed, zlib.crc32(layer.name.encode())])
                values = [reinitialised(v.name, w, rng) for v, w in zip(layer.weights, values)]
            weights[layer.name] = values
    unknown = layers - set(weights)
    if unknown:
        raise InvalidParameterError(f"Model '{bundle.name}' has no layer(s) {', '.join(sorted(unknown))}.")

    def factory() -> Any:
        model = tf.keras.Model.from_config(config, custom_objects=custom)
        for layer in model.layers:
            if layer.weights:
                layer.set_weights(weights[layer.name])
        return model

    return ModelBundle.create(factory, name=f"{bundle.name} (top {len(layers)} layers randomised)",
                              preprocessing=bundle.preprocessing, class_names=bundle.class_names,
                              source="randomised")


def spearman(a: np.ndarray, b: np.ndarray, absolute: bool = False) -> np.ndarray:
    """Spearman rank correlation of each pair of maps ``a[i], b[i]`` ``(N, H, W)`` over pixels → ``(N,)``.

    ``absolute`` compares magnitudes. A constant map shares no ordering with any other: ρ = 0.
    """
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    if absolute:
        a, b = np.abs(a), np.abs(b)
    from scipy.stats import rankdata  # 1.5 s to import: not on the way to the first page

    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    return np.where(den > 0, (ra * rb).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)


def cascade_points(n_layers: int, max_steps: int | None = None) -> list[int]:
    """How many top layers are random at each step: ``1 … n_layers``, or ``max_steps`` of them evenly spaced
    (always ending with all layers)."""
    if n_layers < 1:
        raise InvalidParameterError("The model has no layer with weights to randomise.")
    if not max_steps or max_steps >= n_layers:
        return list(range(1, n_layers + 1))
    return sorted({int(round(v)) for v in np.linspace(1, n_layers, max(1, int(max_steps)))} | {n_layers})


@dataclass
class SanityResult:
    """Outcome of a cascading randomisation check.

    Attributes
    ----------
    frame : long form, one row per (step, image): ``step`` (0 = the original model), ``layer`` (the layer newly
        randomised at that step; ``original`` at step 0), ``randomised`` (how many top layers are random),
        ``image``, ``rank_corr``.
    final_mean : mean rank correlation once every layer is random.
    cascade_mean : mean rank correlation over every randomised step (the flag's measure).
    insensitive : ``cascade_mean > threshold``.
    seed : the seed of the re-initialised weights.
    """

    model: str
    method: str
    frame: pd.DataFrame
    layers: list[str]
    threshold: float
    absolute: bool
    final_mean: float
    cascade_mean: float
    insensitive: bool
    seed: int = 0

    def summary(self) -> pd.DataFrame:
        """Per step: ``step, layer, randomised, mean, sd, n``."""
        g = self.frame.groupby(["step", "layer", "randomised"], sort=True)["rank_corr"]
        return g.agg(mean="mean", sd="std", n="count").reset_index()

    @property
    def verdict(self) -> str:
        word = "insensitive to the model" if self.insensitive else "changes with the model"
        return (f"{get_method(self.method).label} {word}: mean rank correlation {self.cascade_mean:.2f} over the "
                f"cascade (flag above {self.threshold:.2f}), {self.final_mean:.2f} with all {len(self.layers)} "
                "layers randomised.")


def cascading_randomization(
    bundle: ModelBundle,
    method_id: str,
    images: np.ndarray,
    params: dict[str, Any] | None = None,
    targets: Sequence[int] | np.ndarray | None = None,
    *,
    seed: int = 0,
    absolute: bool = False,
    max_steps: int | None = None,
    threshold: float = INSENSITIVE_THRESHOLD,
    progress: Progress | None = None,
) -> SanityResult:
    """Cascading randomisation check of ``method_id`` on ``bundle`` for ``images``.

    Parameters
    ----------
    images : raw pixels ``(N, H, W, C)`` at the model's input size.
    targets : ``(N,)`` explained class per image (default: the original model's prediction), fixed for all steps.
    absolute : compare ``|map|`` instead of signed maps.
    max_steps : at most this many randomised models (evenly spaced; the last randomises every layer).
    progress : ``progress(done, total)`` over randomised models.

    Returns
    -------
    SanityResult; cached in the bundle, so the same check on the same images runs once.

    Ref. Adebayo et al. 2018, Sanity Checks for Saliency Maps, NeurIPS.
    """
    spec = get_method(method_id)
    resolved = spec.resolve_params(params)
    images = as_images(bundle, images)
    targets = predicted_classes(bundle, images) if targets is None else np.asarray(targets, np.int64)
    key = ("quality.sanity", method_id, repr(sorted(resolved.items())), digest(images, targets), seed, absolute,
           max_steps, float(threshold))
    known = bundle.peek(key)
    if known is not None:
        return known
    layers = weighted_layers(bundle)
    points = cascade_points(len(layers), max_steps)
    original = class_maps(bundle, method_id, images, targets, resolved)
    rows = [pd.DataFrame({"step": 0, "layer": "original", "randomised": 0, "image": np.arange(len(images)),
                          "rank_corr": spearman(original, original, absolute)})]
    for step, k in enumerate(points, start=1):
        randomized = randomized_bundle(bundle, layers[:k], seed)
        try:
            maps = class_maps(randomized, method_id, images, targets, resolved)
        finally:
            randomized.close()
            del randomized
        rows.append(pd.DataFrame({"step": step, "layer": layers[k - 1], "randomised": k,
                                  "image": np.arange(len(images)), "rank_corr": spearman(original, maps, absolute)}))
        if progress:
            progress(step, len(points))
    frame = pd.concat(rows, ignore_index=True)
    final = float(frame.loc[frame["randomised"] == len(layers), "rank_corr"].mean())
    cascade = float(frame.loc[frame["step"] > 0].groupby("step")["rank_corr"].mean().mean())
    result = SanityResult(bundle.name, method_id, frame, layers, float(threshold), absolute, final, cascade,
                          bool(cascade > threshold), int(seed))
    bundle.store(key, result, lock=False)  # computing never held the model's lock
    return result


@lru_cache(maxsize=1)
def demo_sanity() -> dict[tuple[str, str], dict[str, Any]]:
    """Precomputed checks of the demo models: ``(demo model id, method id)`` → ``{cascade_mean, final_mean,
    insensitive, images, threshold}`` (empty if ``scripts/sanity_demo.py`` has not been run)."""
    if not DEMO_RESULTS.exists():
        return {}
    data = json.loads(DEMO_RESULTS.read_text(encoding="utf-8"))
    return {(r["model"], r["method"]): {**r, "images": data["images"], "threshold": data["threshold"]}
            for r in data["results"]}
