"""Every method's maps on the demo models equal the ones recorded before the move to TensorFlow 2.21 / tf_keras.

``scripts/record_reference_maps.py`` wrote ``tests/fixtures/reference_maps.npz`` on TensorFlow 2.14 / Keras 2.14 /
numpy 1.26: one test image per demo model (its raw pixels), the class explained and every supported method's map at
its default parameters. A change of stack, loader or engine that moves any map by more than 1e-5 of its largest
magnitude fails here, naming the model and method.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xai_core.data.demo import load_demo_set
from xai_core.methods import Target, explain, methods_for
from xai_core.methods.patterns import fit_patterns, image_batches, pattern_support, register_patterns
from xai_core.models.demo import DEMO_MODELS, load_demo_model

REFERENCE = np.load(Path(__file__).resolve().parents[1] / "fixtures" / "reference_maps.npz")
RECORDED = sorted({key.split("/")[0] for key in REFERENCE.files if "/" in key})
PATTERN_IMAGES = 256  # as recorded
TOLERANCE = 1e-5


@pytest.mark.parametrize("model_id", RECORDED)
def test_every_method_gives_the_recorded_map(model_id):
    assert model_id in DEMO_MODELS
    bundle = load_demo_model(model_id)
    try:
        images = REFERENCE[f"{model_id}/images"]
        classes = REFERENCE[f"{model_id}/classes"]
        if pattern_support(bundle) is None:
            train = load_demo_set(DEMO_MODELS[model_id].dataset, "train").images[:PATTERN_IMAGES]
            register_patterns(bundle, fit_patterns(bundle, image_batches(train), len(train), "relu"))
        recorded = sorted(key.split("/", 1)[1] for key in REFERENCE.files
                          if key.startswith(f"{model_id}/") and key.split("/", 1)[1] not in ("images", "classes"))
        assert sorted(methods_for(bundle)) == recorded, "the methods offered for this demo model changed"
        off = {}
        for method_id in recorded:
            ref = REFERENCE[f"{model_id}/{method_id}"]
            maps = np.stack([explain(bundle, method_id, images[i:i + 1], Target.of_class(int(c))).maps[0, 0]
                             for i, c in enumerate(classes)])
            error = float(np.abs(maps - ref).max() / max(float(np.abs(ref).max()), 1e-12))
            if error > TOLERANCE:
                off[method_id] = f"{error:.2e}"
        assert not off, f"maps differ from the recorded ones (relative to each map's largest magnitude): {off}"
    finally:
        bundle.close()
