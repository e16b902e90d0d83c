"""Data sets (xai_core.data.dataset): folder and zip layouts, bad files skipped and counted, safe zips, lazy
batches, label mapping.

The one-pass statistics over a data set are tested in tests/analysis/test_dataset_pass.py.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xai_core.data.dataset import Dataset, model_labels, open_folder, open_zip
from xai_core.errors import DatasetError


def _png(color: int, size: int = 20) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), color, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def labelled(tmp_path: Path) -> Path:
    """cat/ (2 images, one nested deeper), dog/ (2 images + a truncated PNG + a text file), a hidden file."""
    root = tmp_path / "pets"
    (root / "cat" / "indoor").mkdir(parents=True)
    (root / "dog").mkdir()
    (root / "cat" / "a.png").write_bytes(_png(10))
    (root / "cat" / "indoor" / "b.png").write_bytes(_png(20))
    (root / "dog" / "c.png").write_bytes(_png(30))
    (root / "dog" / "d.PNG").write_bytes(_png(40))
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    (root / "dog" / "notes.txt").write_text("hello")
    (root / "dog" / ".hidden.png").write_bytes(_png(50))
    return root


def test_labelled_folder_labels_and_skips(labelled):
    ds = open_folder(labelled)
    assert ds.class_names == ("cat", "dog")
    assert ds.ids == ("cat/a.png", "cat/indoor/b.png", "dog/c.png", "dog/d.PNG")
    assert ds.labels.tolist() == [0, 0, 1, 1]
    skipped = dict(ds.skipped)
    assert set(skipped) == {"dog/broken.png", "dog/notes.txt"}
    assert "not an image file type" in skipped["dog/notes.txt"]
    assert ds.labeled and len(ds) == 4
    # The same folder gives the same key; changing a file changes it.
    assert open_folder(labelled).key == ds.key
    (labelled / "cat" / "a.png").write_bytes(_png(11, 21))
    assert open_folder(labelled).key != ds.key


def test_flat_folder_is_unlabelled(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(_png(i * 50))
    ds = open_folder(tmp_path)
    assert not ds.labeled and ds.class_names == () and ds.labels.tolist() == [-1, -1, -1]


def test_folder_errors_are_readable(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        open_folder(tmp_path / "missing")
    (tmp_path / "x.txt").write_text("no images")
    with pytest.raises(DatasetError, match="No readable image"):
        open_folder(tmp_path)


def test_batches_are_lazy_fitted_and_skip_undecodable(tmp_path):
    """A file whose header reads but whose body is truncated is dropped from its batch and recorded."""
    root = tmp_path / "set"
    root.mkdir()
    for i in range(5):
        (root / f"{i}.png").write_bytes(_png(i * 40, size=24 + i))
    good = _png(200, 64)
    (root / "5_trunc.png").write_bytes(good[: len(good) // 2 + 40])  # valid header, truncated data
    ds = open_folder(root)
    calls = []
    reader = ds.reader
    lazy = Dataset(ds.name, ds.key, ds.ids, ds.labels, ds.class_names, lambda i: calls.append(i) or reader(i))
    it = lazy.batches((16, 16), 1, batch_size=2)
    first = next(it)
    assert calls == [0, 1], "only the first batch is read"
    assert first.images.shape == (2, 16, 16, 1) and first.images.dtype == np.uint8
    rest = list(it)
    seen = np.concatenate([first.indices, *[b.indices for b in rest]])
    trunc = ds.ids.index("5_trunc.png")
    assert trunc not in seen and len(seen) == len(ds) - 1
    assert "5_trunc.png" in lazy.failures


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_with_wrapper_folder(tmp_path):
    data = _zip({"data/a/1.png": _png(1), "data/a/2.png": _png(2), "data/b/3.png": _png(3), "data/b/x.bin": b"?"})
    ds = open_zip(data, tmp_path, name="set.zip")
    assert ds.name == "set.zip" and ds.class_names == ("a", "b") and ds.labels.tolist() == [0, 0, 1]
    assert len(ds.skipped) == 1
    assert open_zip(data, tmp_path).key == ds.key  # extracted once, same key


def test_zip_slip_is_refused(tmp_path):
    data = _zip({"ok/1.png": _png(1), "../../evil.png": _png(2)})
    with pytest.raises(DatasetError, match="outside the extraction folder"):
        open_zip(data, tmp_path / "work")
    assert not (tmp_path / "evil.png").exists() and not (tmp_path.parent / "evil.png").exists()


def test_zip_bomb_is_refused(tmp_path):
    """50 MB of zeros compress to ~50 kB: refused by the uncompressed-size cap, nothing left on disk."""
    data = _zip({"a/bomb.png": b"\0" * 50_000_000})
    assert len(data) < 200_000
    with pytest.raises(DatasetError, match="unpacks to"):
        open_zip(data, tmp_path, max_bytes=10_000_000)
    assert not list(tmp_path.rglob("bomb.png"))
    with pytest.raises(DatasetError, match="at most 1 are accepted"):
        open_zip(_zip({"a/1.png": _png(1), "a/2.png": _png(2)}), tmp_path, max_files=1)


def test_model_labels_match_by_name_wnid_and_number():
    ds = Dataset("x", "x", ("1", "2", "3", "4"), np.array([0, 1, 2, -1]), ("Golden_Retriever", "n01440764", "zebra"),
                 reader=lambda i: np.zeros((8, 8, 3), np.uint8))
    labels, unmatched = model_labels(ds, ["tench", "golden retriever"], wnids=["n01440764", "n02099601"])
    assert labels.tolist() == [1, 0, -1, -1] and unmatched == ["zebra"]
    numeric = Dataset("y", "y", ("a", "b"), np.array([0, 1]), ("0", "7"), reader=lambda i: None)
    assert model_labels(numeric, [f"c{i}" for i in range(10)])[0].tolist() == [0, 7]


# --------------------------------------------------------------------------- disk budget of unpacked zips
def _image_zip(seed: int, n: int = 3, side: int = 64) -> bytes:
    import io as _io
    import zipfile as _zipfile

    from PIL import Image as _Image

    rng = np.random.default_rng(seed)
    buf = _io.BytesIO()
    with _zipfile.ZipFile(buf, "w", _zipfile.ZIP_STORED) as zf:
        for i in range(n):
            png = _io.BytesIO()
            _Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(png, "PNG")
            zf.writestr(f"cls{i % 2}/img{i}.png", png.getvalue())
    return buf.getvalue()


def _unpacked(workdir) -> list[str]:
    return sorted(p.name for p in workdir.glob("zip-*"))


def test_unpacked_zips_stay_within_the_disk_budget_oldest_removed_first(tmp_path):
    from xai_core.data.dataset import extractions, open_zip

    archives = [_image_zip(seed) for seed in range(3)]
    size = len(archives[0])  # stored, not deflated: unpacked ≈ archive size
    budget = int(2.5 * size)
    first = open_zip(archives[0], tmp_path, budget=budget)
    open_zip(archives[1], tmp_path, budget=budget)
    assert len(_unpacked(tmp_path)) == 2
    open_zip(archives[0], tmp_path, budget=budget)  # used again: now the most recent
    open_zip(archives[2], tmp_path, budget=budget)
    kept = {f.name for f, _ in extractions(tmp_path)}
    assert len(kept) == 2 and f"zip-{first.key.split(':')[1]}" in kept, "the least recently used one went"
    assert sum(n for _, n in extractions(tmp_path)) <= budget


def test_an_archive_larger_than_the_budget_is_refused_before_writing(tmp_path):
    from xai_core.data.dataset import open_zip

    archive = _image_zip(0)
    with pytest.raises(DatasetError, match="disk budget"):
        open_zip(archive, tmp_path, budget=len(archive) // 2)
    assert _unpacked(tmp_path) == []


def test_a_zip_without_images_or_over_the_limit_leaves_nothing(tmp_path):
    """The issue's zipbomb case: it passed the check, unpacked fully, was refused afterwards, and its bytes stayed
    in the extraction folder for good."""
    import io as _io
    import zipfile as _zipfile

    from xai_core.data.dataset import open_zip

    buf = _io.BytesIO()
    with _zipfile.ZipFile(buf, "w", _zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(4 * 1024**2))
    with pytest.raises(DatasetError):
        open_zip(buf.getvalue(), tmp_path, budget=64 * 1024**2)
    assert _unpacked(tmp_path) == [], "refused after unpacking: the unpacked bytes are removed"
    with pytest.raises(DatasetError):
        open_zip(buf.getvalue(), tmp_path, max_bytes=4 * 1024**2 - 1, budget=64 * 1024**2)
    assert _unpacked(tmp_path) == []
