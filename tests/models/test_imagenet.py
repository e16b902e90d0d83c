"""ImageNet class names and WordNet ids in Keras' order (xai_core.models.imagenet)."""

from __future__ import annotations

from xai_core.models.imagenet import imagenet_class_names, imagenet_wnids


def test_imagenet_names_in_keras_order() -> None:
    names = imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) == 1000
    spot = {0: "tench", 1: "goldfish", 207: "golden retriever", 281: "tabby cat", 999: "toilet paper"}
    for index, name in spot.items():
        assert names[index].lower() == name, (index, names[index])
    # Keras' imagenet_class_index.json orders classes by WordNet id: the same ids at the same indices.
    wnids = imagenet_wnids()
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000
    assert (wnids[0], wnids[207], wnids[281], wnids[999]) == ("n01440764", "n02099601", "n02123045", "n15075141")


def test_imagenet_names_cached_but_caller_cannot_corrupt_them() -> None:
    a = imagenet_class_names()
    a[0] = "changed"
    assert imagenet_class_names()[0] == "tench"
