"""What a user can take away from a page: raw maps as ``.npz``, predictions as CSV, safe file names.

Pure functions from results to bytes, so pages hand them to ``st.download_button`` and tests read them back.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xai_core.methods import Explanation


def slug(text: str, max_len: int = 60) -> str:
    """A file-name-safe version of ``text``: ``"LRP-ε · Digits CNN"`` → ``"lrp-digits-cnn"``."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:max_len].strip("-") or "x"


def stack_explanations(results: Sequence[Explanation]) -> Explanation:
    """Concatenate per-image explanations of one model (same method and target kind) along the image axis."""
    if not results:
        raise ValueError("no explanations to stack")
    first = results[0]
    raws = [r.raw for r in results if r.raw is not None]
    raw = np.concatenate(raws, axis=0) if len(raws) == len(results) else None
    return Explanation(
        method=first.method, maps=np.concatenate([r.maps for r in results], axis=0), raw=raw,
        indices=np.concatenate([r.indices for r in results], axis=0), layer=first.layer, signed=first.signed,
        params=dict(first.params), labels=[row for r in results for row in r.labels],
        warnings=list(dict.fromkeys(w for r in results for w in r.warnings)),
    )


def maps_npz(results: Mapping[str, tuple[Sequence[str], Explanation]], meta: Mapping[str, Any] | None = None) -> bytes:
    """Raw maps of one or several models as a compressed ``.npz``.

    Parameters
    ----------
    results : model name → (image names, explanation of those images). Each model gets the arrays
        ``<model>/maps`` ``(N, K, H, W)``, ``<model>/raw`` ``(N, K, H, W, C)`` (when the method has channels),
        ``<model>/indices`` ``(N, K)`` (class or flat neuron index), ``<model>/labels`` ``(N, K)`` and
        ``<model>/images`` ``(N,)``, with ``<model>`` = :func:`slug` of the name.
    meta : extra facts stored as the JSON string ``meta`` (method, target, parameters, …).

    Returns
    -------
    bytes of an ``np.load``-able archive; ``models`` lists the model names in order.
    """
    arrays: dict[str, Any] = {}
    names: list[str] = []
    for name, (images, expl) in results.items():
        key = slug(name)
        while f"{key}/maps" in arrays:
            key += "_"
        names.append(name)
        arrays[f"{key}/maps"] = np.asarray(expl.maps, np.float32)
        if expl.raw is not None:
            arrays[f"{key}/raw"] = np.asarray(expl.raw, np.float32)
        arrays[f"{key}/indices"] = np.asarray(expl.indices, np.int64)
        arrays[f"{key}/labels"] = np.asarray(expl.labels, dtype=str).reshape(expl.indices.shape)
        arrays[f"{key}/images"] = np.asarray(list(images), dtype=str)
        arrays[f"{key}/layer"] = np.asarray(expl.layer or "")
    arrays["models"] = np.asarray(names, dtype=str)
    arrays["meta"] = np.asarray(json.dumps(dict(meta or {}), default=str, ensure_ascii=False))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def predictions_csv(frames: Sequence[pd.DataFrame]) -> bytes:
    """Concatenate :func:`xai_core.viz.prediction_charts.predictions_frame` tables into one UTF-8 CSV."""
    cols = ["image", "model", "rank", "class_index", "class_name", "probability"]
    df = pd.concat(list(frames), ignore_index=True) if frames else pd.DataFrame(columns=cols)
    return df.to_csv(index=False).encode("utf-8")
