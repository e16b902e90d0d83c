"""Which preprocessing an uploaded model expects: its own rescaling layers, or a known architecture.

A ``tf.keras.applications`` network saved by its user keeps Keras' layer names (``conv1_conv`` …
``conv5_block3_out`` for ResNet50, ``Conv1`` … ``block_16_project`` for MobileNetV2), and each family documents
one input convention: ResNet and VGG expect *caffe* (BGR, mean-subtracted), MobileNet, Inception, Xception and
NASNet pixels in [−1, 1], DenseNet *torch* (ImageNet mean / std). Feeding such a network pixels / 255 gives wrong
predictions and wrong maps without any error, so :func:`detect_preprocessing` looks, in order, for

1. a ``Rescaling`` / ``Normalization`` layer before the first layer with weights: the network rescales raw
   pixels itself (EfficientNet, ConvNeXt, RegNet, ResNet-RS, MobileNetV3 and many user models);
2. the layer-name fingerprint of a ``keras.applications`` family (:data:`FINGERPRINTS`): its documented
   convention, with the network named when the block counts tell (ResNet50 vs ResNet101 …);
3. otherwise pixels / 255, **marked as a guess**, so the page shows the choice and asks the user to check it.

Ref. https://keras.io/api/applications/ (``preprocess_input`` of each family).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: Keras' convention name → key of :data:`xai_core.models.bundle.PREPROCESSINGS`.
CONVENTION_TO_PREPROCESSING = {"caffe": "caffe", "tf": "symmetric", "torch": "torch", "raw": "raw"}
_INPUT_SCALERS = ("Rescaling", "Normalization")


@dataclass(frozen=True)
class Fingerprint:
    """Layer names every network of a ``keras.applications`` module has, and names it never has.

    ``convention`` is the module's ``preprocess_input`` convention (``caffe``, ``tf``, ``torch``, ``raw``).
    """

    module: str
    family: str
    convention: str
    required: tuple[str, ...]
    forbidden: tuple[str, ...] = ()
    required_prefixes: tuple[str, ...] = ()

    def matches(self, names: set[str]) -> bool:
        """``names``: the model's layer names, written as :func:`_keras3_name` writes them."""
        required, forbidden = map(_keras3_names, (self.required, self.forbidden))
        return (all(n in names for n in required) and not any(n in names for n in forbidden)
                and all(any(n.startswith(p) for n in names) for p in self.required_prefixes))


def _keras3_name(name: str) -> str:
    """Keras 3 forbids "/" in layer names and writes "_" where Keras 2's applications have it (DenseNet's
    ``conv1/conv`` is ``conv1_conv``): names are compared in that form."""
    return name.replace("/", "_")


def _keras3_names(names: tuple[str, ...]) -> set[str]:
    return {_keras3_name(n) for n in names}


FINGERPRINTS: tuple[Fingerprint, ...] = (
    Fingerprint("resnet", "ResNet", "caffe", ("conv1_conv", "conv2_block1_1_conv", "conv5_block3_out"),
                ("conv2_block1_preact_bn",)),
    Fingerprint("resnet_v2", "ResNetV2", "tf", ("conv1_conv", "conv2_block1_preact_bn", "post_bn")),
    Fingerprint("vgg16", "VGG", "caffe", ("block1_conv1", "block1_conv2", "block5_conv3", "block5_pool"),
                ("block1_conv1_bn",)),
    Fingerprint("mobilenet", "MobileNet", "tf", ("conv1", "conv_dw_1", "conv_pw_1", "conv_pw_13")),
    Fingerprint("mobilenet_v2", "MobileNetV2", "tf", ("Conv1", "bn_Conv1", "expanded_conv_depthwise",
                                                      "block_16_project")),
    Fingerprint("xception", "Xception", "tf", ("block1_conv1", "block1_conv1_bn", "block14_sepconv2")),
    Fingerprint("inception_v3", "InceptionV3", "tf", ("mixed0", "mixed5", "mixed10")),
    Fingerprint("inception_resnet_v2", "InceptionResNetV2", "tf", ("block35_1_conv", "block17_1_conv", "block8_1_conv",
                                                                  "conv_7b")),
    Fingerprint("densenet", "DenseNet", "torch", ("conv1/conv", "conv2_block1_0_bn", "conv2_block1_concat", "bn")),
    Fingerprint("nasnet", "NASNet", "tf", ("stem_conv1", "stem_bn1"), required_prefixes=("normal_concat_",)),
    Fingerprint("mobilenet_v3", "MobileNetV3", "raw", ("Conv/BatchNorm", "expanded_conv/depthwise")),
    # Keras 3 names MobileNetV3's layers anew (lower case, "_bn")
    Fingerprint("mobilenet_v3", "MobileNetV3", "raw", ("conv_bn", "expanded_conv_depthwise_bn",
                                                       "expanded_conv_project_bn", "expanded_conv_1_expand")),
    Fingerprint("efficientnet", "EfficientNet", "raw", ("stem_conv", "stem_bn", "block1a_dwconv", "top_conv"),
                ("block1a_project_activation",)),
    Fingerprint("efficientnet_v2", "EfficientNetV2", "raw", ("stem_conv", "stem_bn", "top_conv",
                                                             "block1a_project_activation", "block4a_dwconv2")),
)


@dataclass(frozen=True)
class PreprocessingGuess:
    """The outcome of :func:`detect_preprocessing`.

    Attributes
    ----------
    name : a key of :data:`xai_core.models.bundle.PREPROCESSINGS`.
    reason : one sentence for the model summary: what was recognised and why this choice.
    certain : False when nothing was recognised and ``name`` is only the usual default.
    architecture : the recognised ``keras.applications`` network or family, if any.
    """

    name: str
    reason: str
    certain: bool
    architecture: str | None = None


def _count(names: set[str], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for n in names if (m := rx.match(n))})


def _network(fp: Fingerprint, names: set[str]) -> str:
    """The exact network where block counts tell it, else the family."""
    if fp.module in ("resnet", "resnet_v2"):
        blocks = _count(names, r"conv4_block(\d+)_out$")
        base = {6: "ResNet50", 23: "ResNet101", 36: "ResNet152"}.get(blocks)
        return (base + ("V2" if fp.module == "resnet_v2" else "")) if base else fp.family
    if fp.module == "densenet":
        return {24: "DenseNet121", 32: "DenseNet169", 48: "DenseNet201"}.get(
            _count(names, r"conv4_block(\d+)_concat$"), "DenseNet")
    if fp.module == "vgg16":
        return "VGG19" if "block5_conv4" in names else "VGG16"
    return fp.family


def recognise(model: Any) -> tuple[Fingerprint, str] | None:
    """``(fingerprint, network name)`` of the ``keras.applications`` architecture ``model`` is built on, or None."""
    names = {_keras3_name(layer.name) for layer in model.layers}
    for fp in FINGERPRINTS:
        if fp.matches(names):
            return fp, _network(fp, names)
    return None


def _head(model: Any) -> str:
    classes = int(model.output.shape[-1])
    return "its 1000-class ImageNet head" if classes == 1000 else f"a new {classes}-class head"


def detect_preprocessing(model: Any) -> PreprocessingGuess:
    """How raw pixels must be prepared for ``model`` (see the module docstring)."""
    from xai_core.models.bundle import PREPROCESSINGS

    found = recognise(model)
    arch = found[1] if found else None
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in _INPUT_SCALERS:
            what = f"keras.applications {arch} (with {_head(model)}), which" if arch else "the model"
            return PreprocessingGuess(
                "raw", f"auto → raw pixels: {what} rescales its input itself (layer '{layer.name}', {kind}).",
                True, arch)
        if kind != "InputLayer" and layer.weights:
            break
    if found is not None and found[0].convention != "raw":
        fp, arch = found
        name = CONVENTION_TO_PREPROCESSING[fp.convention]
        shown = ", ".join(fp.required[:2]) + " …"
        return PreprocessingGuess(
            name, f"auto → {name} ({PREPROCESSINGS[name].description}): recognised as keras.applications {arch} "
                  f"from its layer names ({shown}) and {_head(model)}; that family expects {fp.convention}-style "
                  "preprocessing.", True, arch)
    if found is not None:  # a self-rescaling family whose rescaling layer was left out
        return PreprocessingGuess(
            "unit", f"auto → unit (pixels / 255) is a guess: the layers look like keras.applications {arch}, "
                    "but its built-in rescaling layer is missing. Check the Preprocessing choice.", False, arch)
    return PreprocessingGuess(
        "unit", "auto → unit (pixels / 255) is a guess: the model has no Rescaling/Normalization layer and is not "
                "a known keras.applications architecture. If its predictions look wrong, choose the "
                "preprocessing it was trained with.", False)
