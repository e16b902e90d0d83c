"""Has a method already been built for a model? A cheap check so pages only show "building…" when it is true.

Building (analyzer graphs, Grad-CAM gradient tensors) is the expensive part of a method; it depends on the
model, the method, the parameters marked ``builds`` and the target layer, never on the image or the class
(analyzers run in ``neuron_selection_mode="index"``). After a successful run the page marks that combination
in the bundle's cache; :func:`is_prepared` answers from there without touching TensorFlow.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from xai_core.methods.base import get_method
from xai_core.models.bundle import ModelBundle


def build_key(bundle: ModelBundle, method_id: str, params: dict[str, Any] | None, target_layer: str | None) -> Hashable:
    """``("prepared", method, layer, build parameters)``; the output layer counts as ``None`` (class logits)."""
    spec = get_method(method_id)
    resolved = spec.resolve_params(params)
    layer = None if target_layer is None or bundle.is_output_layer(target_layer) else target_layer
    builds = tuple((p.name, repr(resolved[p.name])) for p in spec.params if p.builds)
    return ("prepared", method_id, layer, builds)


def is_prepared(bundle: ModelBundle, method_id: str, params: dict[str, Any] | None, target_layer: str | None) -> bool:
    """True when :func:`mark_prepared` was called for this combination (the next run needs no build)."""
    try:
        return bundle.is_cached(build_key(bundle, method_id, params, target_layer))
    except Exception:  # an invalid parameter or layer: the run will say so; nothing is built yet
        return False


def mark_prepared(bundle: ModelBundle, method_id: str, params: dict[str, Any] | None, target_layer: str | None) -> None:
    """Remember that ``method_id`` ran on ``bundle`` with these build parameters and target layer."""
    key = build_key(bundle, method_id, params, target_layer)
    bundle.cached(key, lambda: True)
