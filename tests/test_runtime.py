"""xai_core.runtime.install(): our changes to Keras and iNNvestigate are applied only to the versions they were
written for, and never to Keras 3."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

import pytest

from xai_core.compat import innvestigate as innvestigate_compat
from xai_core.compat import keras as keras_compat


def test_everything_is_installed_in_this_process():
    assert keras_compat.installed() and innvestigate_compat.installed()


def test_tensorflow_imported_before_xai_core_is_a_clear_error_not_keras_3():
    """Imported first, TensorFlow resolves ``tensorflow.keras`` to Keras 3; iNNvestigate would then fail deep
    inside its import (no LocallyConnected1D) or, worse, half-work."""
    code = "import tensorflow\nimport xai_core.runtime as r\nr.install()\n"
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}  # as a fresh shell has it
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode != 0
    assert "KerasVersionError" in run.stderr and "Import xai_core first" in run.stderr


@pytest.mark.parametrize(("module", "package", "error"), [
    (keras_compat, "tf_keras", keras_compat.KerasVersionError),
    (innvestigate_compat, "innvestigate", innvestigate_compat.InnvestigateVersionError),
])
def test_another_version_is_refused_with_what_to_do(monkeypatch, module, package, error):
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "9.9.9" if name == package else real(name))
    with pytest.raises(error, match=r"written for .*9\.9\.9 is installed.*make run"):
        module.check_version()
