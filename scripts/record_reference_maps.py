"""Record every method's maps on the demo models, to check that a change of stack or engine changes no map.

    .venv/bin/python scripts/record_reference_maps.py            # writes tests/fixtures/reference_maps.npz

The file holds, per demo model, one test image (raw pixels, so the check does not depend on how the demo data
is generated), the class each map explains, and each supported method's map at its default parameters
(PatternNet / PatternAttribution: relu patterns fitted on the first 256 training images).
``tests/methods/test_reference_maps.py`` recomputes them and compares (≤ 1e-5 of each map's largest magnitude).
Recorded on TensorFlow 2.14 / Keras 2.14 / numpy 1.26 before the move to TensorFlow 2.21 / tf_keras.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_core import runtime

runtime.install()  # graph mode and our changes to Keras / iNNvestigate, before any model

OUT = ROOT / "tests" / "fixtures" / "reference_maps.npz"
IMAGES_PER_MODEL = 1
PATTERN_IMAGES = 256


def main() -> None:
    from xai_core.data.demo import load_demo_set
    from xai_core.methods import Target, explain, methods_for
    from xai_core.methods.patterns import fit_patterns, image_batches, pattern_support, register_patterns
    from xai_core.models.demo import DEMO_MODELS, load_demo_model

    arrays: dict[str, np.ndarray] = {}
    for model_id, entry in DEMO_MODELS.items():
        bundle = load_demo_model(model_id)
        images = load_demo_set(entry.dataset, "test").images[:IMAGES_PER_MODEL].astype(np.float32)
        train = load_demo_set(entry.dataset, "train").images[:PATTERN_IMAGES]
        if pattern_support(bundle) is None:
            register_patterns(bundle, fit_patterns(bundle, image_batches(train), len(train), "relu"))
        classes = bundle.logits(bundle.preprocess(images)).argmax(axis=1)
        arrays[f"{model_id}/images"] = images
        arrays[f"{model_id}/classes"] = classes
        for method_id in methods_for(bundle):
            maps = np.stack([explain(bundle, method_id, images[i:i + 1], Target.of_class(int(c))).maps[0, 0]
                             for i, c in enumerate(classes)])
            arrays[f"{model_id}/{method_id}"] = maps.astype(np.float32)
            print(f"{model_id:14s} {method_id:40s} max |map| {np.abs(maps).max():.4g}", flush=True)
        bundle.close()
    import tensorflow as tf

    arrays["_versions"] = np.array([f"tensorflow {tf.__version__}", f"numpy {np.__version__}"])
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1e6:.2f} MB, {len(arrays)} arrays)")


if __name__ == "__main__":
    main()
