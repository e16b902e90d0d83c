"""Explanation methods: one registry (:data:`REGISTRY`), one entry point (:func:`explain`).

Importing this package registers every method family, one module each.
"""

from xai_core.methods import (  # noqa: F401  (importing a family module registers its methods)
    cam,
    deep_taylor,
    deeplift,
    gradient,
    lrp,
    occlusion,
    patterns,
    reference,
)
from xai_core.methods.base import (
    REGISTRY,
    Fitting,
    MethodSpec,
    Param,
    Selection,
    common_methods,
    get_method,
    methods_for,
    ready_methods,
    unsupported_reason,
)
from xai_core.methods.explain import TOP_K_CHOICES, Explanation, Target, explain, flat_neuron_index

FAMILIES = ("Gradient", "LRP", "Deep Taylor", "Pattern", "CAM", "Perturbation", "Reference")

# Registry order = family order (the UI lists methods in it), keeping each family's own order.
_sorted = sorted(REGISTRY.items(), key=lambda item: FAMILIES.index(item[1].family))
REGISTRY.clear()
REGISTRY.update(_sorted)

__all__ = [
    "FAMILIES", "REGISTRY", "TOP_K_CHOICES", "Explanation", "Fitting", "MethodSpec", "Param", "Selection", "Target",
    "common_methods", "explain", "flat_neuron_index", "get_method", "methods_for", "ready_methods",
    "unsupported_reason",
]
