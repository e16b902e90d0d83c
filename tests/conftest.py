"""Shared fixtures: tiny models built in-process (session scope — building is the slow part)."""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np
import pytest
from tiny_models import TINY_SHAPE, make_bundle, tiny_cnn

from xai_core import runtime
from xai_core.models.bundle import ModelBundle

runtime.install()

# The test process holds dozens of models at once (several GB): the server's memory budget is off here, and
# tested on its own ledgers (tests/models/test_memory.py).
os.environ.setdefault("XAI_LENS_MEMORY_BUDGET_MB", "0")


@pytest.fixture(scope="session")
def tiny() -> ModelBundle:
    return make_bundle(tiny_cnn, "tiny")


@pytest.fixture(scope="session")
def tiny_nobias() -> ModelBundle:
    return make_bundle(lambda: tiny_cnn(bias=False, seed=1), "tiny-nobias")


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    """Seven 16×16 RGB images, pixels in [0, 255]."""
    return (np.random.default_rng(42).random((7, *TINY_SHAPE)) * 255).astype(np.float32)
