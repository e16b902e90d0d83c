"""Process-wide setup, done once at startup by :func:`install` (the app's entry, the tests, scripts and benchmarks).

iNNvestigate 2.1.2 builds its analyzers with ``tf.gradients``, which only exists in graph mode, so eager execution is
switched off once, before any Keras model is created. Every other method in XAI Lens is therefore graph-mode code as
well: tensors are built once and run through the model bundle's session. :func:`install` then applies our changes to
Keras and iNNvestigate (:mod:`xai_core.compat.keras`, :mod:`xai_core.compat.innvestigate`), each after checking the
installed version it was written for.

The environment variables TensorFlow reads when it is first imported are set by ``xai_core/__init__.py``.
"""

from __future__ import annotations

import logging
import warnings

import tensorflow as tf

_installed = False


def install() -> None:
    """Graph mode, quiet logs, and our changes to Keras and iNNvestigate; idempotent.

    Raises
    ------
    xai_core.compat.keras.KerasVersionError, xai_core.compat.innvestigate.InnvestigateVersionError
        When the installed library is not the version our changes were written for (install the lock).
    """
    global _installed
    if _installed:
        return
    from xai_core.compat import keras as keras_compat

    keras_compat.check_version()
    tf.compat.v1.disable_eager_execution()
    tf.get_logger().setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*state_updates.*")
    keras_compat.install()
    from xai_core.compat import innvestigate as innvestigate_compat  # imports innvestigate: after graph mode

    innvestigate_compat.install()
    _installed = True


def require_installed() -> None:
    """Raise a clear error when :func:`install` has not run (models built in eager mode cannot be explained)."""
    if not _installed:
        raise RuntimeError("Call xai_core.runtime.install() once at startup, before loading models.")
