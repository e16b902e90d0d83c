"""Record the architecture of every ``keras.applications`` network as Keras 3 saves it, for the loader's tests.

    .venv/bin/python scripts/record_keras3_app_configs.py     # writes tests/fixtures/keras3_app_configs.json.gz

Runs Keras 3 (the ``keras`` package TensorFlow ≥ 2.16 installs, with ``TF_USE_LEGACY_KERAS=0``, set here before
TensorFlow is imported), builds each network with ``weights=None`` and 10 classes at a small input, and stores what
``model.save("model.keras")`` writes as ``config.json`` (``keras.saving.serialize_keras_object(model)``; a saved
file also numbers repeated dtype policies by ``shared_object_id``, which the zoo's real files cover), the layer
names and the number of weights. About 5 minutes; the file is ~0.3 MB.
``tests/models/test_keras3_zoo.py`` converts every one to Keras 2 and builds a few (all with ``XAI_LENS_SLOW=1``).
"""

from __future__ import annotations

import gc
import gzip
import json
import os
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "keras3_app_configs.json.gz"
#: NASNet builds only at its own input size; every other network accepts 75 px.
SIDES = {"NASNetMobile": 224, "NASNetLarge": 331}


def main() -> None:
    os.environ["TF_USE_LEGACY_KERAS"] = "0"
    import keras

    if not keras.__version__.startswith("3."):
        sys.exit(f"needs Keras 3, found {keras.__version__}")
    out: dict[str, dict] = {"__keras_version__": {"version": keras.__version__}}
    for name in sorted(n for n in dir(keras.applications) if n[:1].isupper()):
        side = SIDES.get(name, 75)
        model = getattr(keras.applications, name)(weights=None, input_shape=(side, side, 3), classes=10)
        out[name] = {"config": keras.saving.serialize_keras_object(model),
                     "names": [layer.name for layer in model.layers],
                     "weights": int(sum(w.numpy().size for w in model.weights))}
        print(name, len(model.layers), flush=True)
        del model
        keras.backend.clear_session()
        gc.collect()
    OUT.write_bytes(gzip.compress(json.dumps(out, separators=(",", ":")).encode(), 9))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB, {len(out) - 1} networks)")


if __name__ == "__main__":
    main()
