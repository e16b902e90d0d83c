"""Deep Taylor decomposition (iNNvestigate 2.1.2).

Ref. Montavon et al. 2017, Explaining nonlinear classification decisions with deep Taylor decomposition,
Pattern Recognition 65.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xai_core.methods._innvestigate import analyze, analyzer_build, model_checks
from xai_core.methods.base import MethodSpec, Param, Selection, register
from xai_core.models.bundle import ModelBundle

_REF = "Montavon et al. 2017, Explaining nonlinear classification decisions with deep Taylor decomposition, " \
       "Pattern Recognition 65:211–222."


def _bounds(bundle: ModelBundle, low: float | None, high: float | None) -> dict[str, Any]:
    auto_low, auto_high = bundle.input_low_high
    return {"low": auto_low if low is None else low, "high": auto_high if high is None else high}


def _bounded(bundle: ModelBundle, x: np.ndarray, selection: Selection, *, low: float | None,
             high: float | None) -> np.ndarray:
    return analyze(bundle, "deep_taylor.bounded", "deep_taylor.bounded", x, selection, **_bounds(bundle, low, high))


register(MethodSpec(
    id="deep_taylor", label="Deep Taylor", family="Deep Taylor",
    summary="Decomposes the score into pixel contributions by Taylor expansions at each layer "
            "(the z⁺ rule for ReLU layers): positive, conservative maps.",
    caveat="Defined for ReLU networks only; can come out empty when a linear head drops relevance.",
    reference=_REF, signed=False,
    run=lambda bundle, x, selection: analyze(bundle, "deep_taylor", "deep_taylor", x, selection),
    support=model_checks("deep_taylor"), build=analyzer_build("deep_taylor", "deep_taylor"),
    innvestigate_name="deep_taylor", relevance=True,
))
register(MethodSpec(
    id="deep_taylor.bounded", label="Deep Taylor (bounded input)", family="Deep Taylor",
    summary="Deep Taylor with the z^B rule at the input, which knows the pixel range [low, high].",
    caveat="Wrong bounds give wrong maps; by default they are the model's own black/white pixel values.",
    reference=_REF, signed=False,
    params=(Param("low", "float", None, "Lowest input value", "Empty = the model's black pixel value."),
            Param("high", "float", None, "Highest input value", "Empty = the model's white pixel value.")),
    run=_bounded,
    support=model_checks("deep_taylor.bounded", lambda bundle: _bounds(bundle, None, None)),
    build=analyzer_build("deep_taylor.bounded", "deep_taylor.bounded", _bounds),
    innvestigate_name="deep_taylor.bounded", relevance=True,
))
