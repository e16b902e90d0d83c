"""Errors a user can cause. Pages catch :class:`XaiLensError` and show its message with ``st.error``."""

from __future__ import annotations


class XaiLensError(Exception):
    """Base class: the message is written for a person and says what to do."""


class ModelLoadError(XaiLensError):
    """A model file could not be loaded, or is not an image classifier XAI Lens can explain."""


class WeightsUnavailableError(ModelLoadError):
    """Pretrained weights could not be downloaded (usually: no network)."""


class UnsupportedMethodError(XaiLensError):
    """The chosen explanation method cannot run on this model, layer or target."""


class InvalidParameterError(XaiLensError):
    """A method parameter, layer or target is out of range."""


class ImageLoadError(XaiLensError):
    """An image file could not be read."""


class DatasetError(XaiLensError):
    """A data set (folder or archive) could not be read safely."""


class PatternsNotFittedError(XaiLensError):
    """A pattern method (PatternNet, PatternAttribution) was asked for before patterns were fitted for the model."""
