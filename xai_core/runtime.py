"""Process-wide TensorFlow setup. Imported first by :mod:`xai_core`.

iNNvestigate 2.1.2 builds its analyzers with ``tf.gradients``, which only exists in graph mode, so eager
execution is switched off once, before any Keras model is created. Every other method in XAI Lens is
therefore graph-mode code as well: tensors are built once and run through the model bundle's session.
"""

from __future__ import annotations

import logging
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide C++ info/warning spam in the app log
# oneDNN's own allocator keeps the memory of a closed session: ResNet50 + LRP-ε stayed at 1.37 GB RSS after
# ModelBundle.close() (504 MB before loading); with the system allocator 0.67 GB, at the same speed (measured,
# docs/benchmarks.md "Memory budget"). The memory budget relies on closed models really giving memory back.
os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")

import tensorflow as tf

tf.compat.v1.disable_eager_execution()
tf.get_logger().setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*state_updates.*")

# Keras wraps every raw TF op that iNNvestigate creates in a "TFOpLambda" layer and, by default, evaluates
# constant inputs of such layers through a fresh session callable each time, extending the graph again and
# again. Building a gradient analyzer for MobileNetV2 takes > 5 minutes that way and 13 s with the switch on
# (measured, see shared STACK.md). The switch also fixes IntegratedGradients/SmoothGrad on BatchNormalization
# models ("Cannot convert ... dtype([('resource', 'u1')])"). Its only documented downside is ``get_config``
# of those op-layers, which analyzers never call.
try:  # pragma: no cover - attribute exists in keras 2.14, guard against a future rename
    from keras.src.engine import base_layer_utils as _blu

    _blu._UNSAFE_GRAPH_OP_LAYER_CREATION = True
except ImportError:  # pragma: no cover
    pass

GRAPH_MODE = not tf.executing_eagerly()
