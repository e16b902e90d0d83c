"""XAI Lens's engine: models, explanation methods, data sets, quality checks and charts (no Streamlit here).

TensorFlow reads these environment variables once, when it is first imported, so they are set here, before any
module of this package imports it. Call :func:`xai_core.runtime.install` once at startup (graph mode, our changes to
Keras and iNNvestigate); nothing else happens on import.
"""

import os

# tf.keras = tf_keras, the Keras 2 API iNNvestigate is written for, never Keras 3.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide C++ info/warning spam in the app log
# oneDNN's own allocator keeps the memory of a closed session: ResNet50 + LRP-ε stayed at 1.37 GB RSS after
# ModelBundle.close() (504 MB before loading); with the system allocator 0.67 GB, at the same speed (measured,
# docs/benchmarks.md "Memory budget"). The memory budget relies on closed models really giving memory back.
os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")
