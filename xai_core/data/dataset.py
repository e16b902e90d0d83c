"""What a data set is: image ids, optional labels, and a lazy reader that yields model-sized batches.

A :class:`Dataset` never holds a folder's pixels: it keeps file paths and reads images on demand, batch by
batch, so a 10,000-image folder costs memory for one batch at a time. Four sources give the same object:

* :func:`demo_dataset` — the embedded digits and shapes sets (in memory, with object masks for shapes);
* :func:`open_folder` — a server-side folder, either *labelled* (one subfolder per class, any depth below it)
  or *unlabelled* (images directly in the folder);
* :func:`open_zip` — a zip of either layout, extracted safely (see :mod:`xai_core.data.archive`).

Files that are not images, or whose header cannot be read, are skipped and listed in ``skipped`` when the set is
opened; files that fail to decode later are skipped by :meth:`Dataset.batches` and listed in ``failures``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from xai_core.data.archive import declared_size, safe_extract_zip
from xai_core.data.demo import load_demo_set
from xai_core.data.images import IMAGE_TYPES, FitMode, fit_to_model, load_image
from xai_core.errors import DatasetError, ImageLoadError, XaiLensError

Progress = Callable[[int, int], None]

#: Most images a folder or zip may hold (beyond this, sample the folder first).
MAX_IMAGES = 50_000
#: Most bytes one zip may unpack to (inclusive).
MAX_ZIP_BYTES = 2 * 1024**3
#: Default disk budget of all unpacked zips together (``XAI_LENS_DISK_BUDGET_MB`` overrides it): Community Cloud's
#: disk is shared, so the oldest extractions are removed to make room for a new one.
DISK_BUDGET_BYTES = 3 * 1024**3
_EXTRACTING = threading.Lock()  # one extraction (and clean-up) at a time: sessions run in threads
_SUFFIXES = {f".{t}" for t in IMAGE_TYPES}
_IGNORED = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Batch:
    """``images[j]`` is data set image ``indices[j]``, fitted to the model: uint8 ``(B, H, W, C)``."""

    indices: np.ndarray
    images: np.ndarray


@dataclass(frozen=True, eq=False)
class Dataset:
    """An image collection read lazily.

    Attributes
    ----------
    name : display name (``"digits/test"``, ``"flowers.zip"``).
    key : stable cache key: the same images under the same ids give the same key.
    ids : ``N`` image ids (file paths relative to the root, or demo ids such as ``"digits/test/0007"``).
    labels : int64 ``(N,)`` indices into ``class_names``; ``-1`` where unknown.
    class_names : class folder names (sorted) or demo class names; empty when unlabelled.
    masks : bool ``(N, H, W)`` object masks (demo shapes only) or ``None``.
    skipped : ``(file, reason)`` for every file left out when the set was opened.
    failures : ``id → reason`` for images that failed to decode since (filled by :meth:`batches`).
    tagged : bool ``(N,)`` images carrying the bias demo's shortcut tag (the tagged shapes demo only) or ``None``.
    """

    name: str
    key: str
    ids: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    reader: Callable[[int], np.ndarray] = field(repr=False)
    masks: np.ndarray | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    failures: dict[str, str] = field(default_factory=dict, repr=False)
    pixels: np.ndarray | None = field(default=None, repr=False)  # all images, when they sit in memory (demo)
    tagged: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labeled(self) -> bool:
        return bool(self.class_names) and bool(np.any(self.labels >= 0))

    def label_name(self, i: int) -> str:
        """Class name of image ``i``, or ``""`` when unknown."""
        lab = int(self.labels[i])
        return self.class_names[lab] if lab >= 0 else ""

    def read(self, indices: Iterable[int]) -> list[np.ndarray]:
        """Native-size uint8 pixels ``(H, W, C)`` of the given images; raises :class:`ImageLoadError`."""
        return [self.reader(int(i)) for i in indices]

    def batches(self, size: tuple[int, int], channels: int, fit: FitMode = "center-crop", batch_size: int = 32,
                indices: Sequence[int] | np.ndarray | None = None) -> Iterator[Batch]:
        """Yield the images fitted to a model's ``size`` and ``channels``, ``batch_size`` at a time.

        Images that cannot be decoded are left out of their batch and recorded in :attr:`failures`.
        """
        order = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        h, w = size
        if self.pixels is not None and self.pixels.shape[1:] == (h, w, channels):  # in memory, right size
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                yield Batch(chunk, self.pixels[chunk])
            return
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            kept: list[int] = []
            pixels: list[np.ndarray] = []
            for i in chunk:
                try:
                    raw = self.reader(int(i))
                except ImageLoadError as exc:
                    self.failures[self.ids[int(i)]] = str(exc)
                    continue
                if raw.shape[:2] == (h, w) and raw.shape[2] == channels:
                    pixels.append(np.asarray(raw, dtype=np.uint8))
                else:
                    pixels.append(fit_to_model(raw, size, channels, fit).astype(np.uint8))
                kept.append(int(i))
            if kept:
                yield Batch(np.asarray(kept, dtype=np.int64), np.stack(pixels))

    def thumbnail(self, i: int, side: int = 96) -> np.ndarray:
        """uint8 RGB ``(h, w, 3)`` preview of image ``i`` whose longer side is ``side`` (pixel-art stays sharp)."""
        raw = self.reader(int(i))
        img = Image.fromarray(raw.squeeze(-1) if raw.shape[-1] == 1 else raw).convert("RGB")
        scale = side / max(img.size)
        resample = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.BILINEAR
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), resample)
        return np.asarray(img, dtype=np.uint8)

    def model_images(self, indices: Sequence[int] | np.ndarray, size: tuple[int, int], channels: int,
                     fit: FitMode = "center-crop") -> dict[int, np.ndarray]:
        """Position → uint8 image ``(H, W, C)`` fitted to a model's input, for ``indices`` (unreadable ones are
        missing)."""
        return {int(i): img for b in self.batches(size, channels, indices=[int(i) for i in indices], fit=fit)
                for i, img in zip(b.indices, b.images)}

    def thumbnails(self, indices: Sequence[int] | np.ndarray, side: int = 96) -> list[np.ndarray]:
        """:meth:`thumbnail` of each of ``indices``; an unreadable image becomes a grey square (never an error)."""
        out = []
        for i in indices:
            try:
                out.append(self.thumbnail(int(i), side))
            except XaiLensError:
                out.append(np.full((side, side, 3), 200, np.uint8))
        return out


# ------------------------------------------------------------------------------------------------ demo
def demo_dataset(name: str, split: str = "test") -> Dataset:
    """The embedded demo set ``name`` (``"digits"`` or ``"shapes"``) as a :class:`Dataset`."""
    demo = load_demo_set(name, split)
    images = demo.images
    return Dataset(
        name=demo.name,
        key=f"demo:{demo.name}",
        ids=tuple(demo.ids),
        labels=np.asarray(demo.labels, dtype=np.int64),
        class_names=tuple(demo.class_names),
        reader=lambda i: images[i],
        masks=demo.masks,
        pixels=images,
        tagged=demo.tagged,
    )


# ---------------------------------------------------------------------------------------------- folders
def _check_header(path: Path) -> str | None:
    """``None`` if Pillow can read the header of ``path``, else the reason it cannot."""
    try:
        with Image.open(path) as img:
            w, h = img.size
    except UnidentifiedImageError:
        return "not an image Pillow can read"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"damaged header ({exc})"
    if min(w, h) < 8:
        return f"only {w}×{h} pixels"
    return None


def _fingerprint(root: Path, files: Sequence[Path]) -> str:
    h = hashlib.sha1()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(root).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _single_subfolder(root: Path) -> Path:
    """Descend through wrapper folders (``data/`` inside a zip) that hold nothing but one folder."""
    while True:
        entries = [p for p in root.iterdir() if p.name not in _IGNORED and not p.name.startswith(".")]
        if len(entries) == 1 and entries[0].is_dir():
            root = entries[0]
        else:
            return root


def open_folder(path: str | Path, name: str | None = None, key: str | None = None,
                progress: Progress | None = None) -> Dataset:
    """Open a folder of images: labelled if it has class subfolders, unlabelled if images sit directly in it.

    Parameters
    ----------
    path : the folder. In the labelled layout each first-level subfolder is a class (its name is the class
        name) and every image below it, at any depth, belongs to that class; images directly in the folder are
        then unlabelled.
    name, key : display name and cache key (default: the folder name, and a fingerprint of paths, sizes and
        modification times).
    progress : ``progress(done, total)`` while headers are checked.

    Raises
    ------
    DatasetError
        Not a folder, no readable image in it, or more than :data:`MAX_IMAGES` images.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"'{path}' is not a folder on the server. Enter the path of a folder of images.")
    root = _single_subfolder(root)
    candidates: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part in _IGNORED or part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        if p.suffix.lower() in _SUFFIXES:
            candidates.append(p)
        else:
            skipped.append((rel.as_posix(), f"not an image file type ({p.suffix or 'no extension'})"))
    if len(candidates) > MAX_IMAGES:
        raise DatasetError(f"The folder holds {len(candidates):,} images; at most {MAX_IMAGES:,} are accepted. "
                           "Use a sample of it.")
    files: list[Path] = []
    for n, p in enumerate(candidates):
        reason = _check_header(p)
        if reason:
            skipped.append((p.relative_to(root).as_posix(), reason))
        else:
            files.append(p)
        if progress and (n % 64 == 0 or n == len(candidates) - 1):
            progress(n + 1, len(candidates))
    if not files:
        raise DatasetError(
            f"No readable image in '{name or root.name}'"
            + (f" ({len(skipped)} file(s) skipped, e.g. {skipped[0][0]}: {skipped[0][1]})." if skipped else ".")
            + f" Supported types: {', '.join(IMAGE_TYPES)}."
        )
    rels = [f.relative_to(root) for f in files]
    classes = sorted({r.parts[0] for r in rels if len(r.parts) > 1})
    class_index = {c: k for k, c in enumerate(classes)}
    labels = np.array([class_index[r.parts[0]] if len(r.parts) > 1 else -1 for r in rels], dtype=np.int64)
    paths = tuple(files)

    def reader(i: int) -> np.ndarray:
        return load_image(paths[i], name=rels[i].as_posix()).pixels

    return Dataset(
        name=name or root.name,
        key=key or f"folder:{_fingerprint(root, files)}",
        ids=tuple(r.as_posix() for r in rels),
        labels=labels,
        class_names=tuple(classes),
        reader=reader,
        skipped=tuple(skipped),
    )


def disk_budget() -> int:
    """Bytes all unpacked zips may take together: ``$XAI_LENS_DISK_BUDGET_MB`` or :data:`DISK_BUDGET_BYTES`."""
    value = os.environ.get("XAI_LENS_DISK_BUDGET_MB")
    try:
        return int(float(value) * 1024**2) if value else DISK_BUDGET_BYTES
    except ValueError:
        return DISK_BUDGET_BYTES


def _folder_bytes(folder: Path) -> int:
    done = folder / ".complete"
    try:
        return int(done.read_text().strip() or "x")
    except (OSError, ValueError):
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def extractions(workdir: str | Path) -> list[tuple[Path, int]]:
    """``(folder, bytes)`` of every unpacked zip under ``workdir``, least recently used first."""
    folders = [f for f in Path(workdir).glob("zip-*") if f.is_dir()] if Path(workdir).is_dir() else []

    def used(folder: Path) -> float:
        done = folder / ".complete"
        return done.stat().st_mtime if done.exists() else 0.0  # unfinished ones (a crash) go first

    return [(f, _folder_bytes(f)) for f in sorted(folders, key=used)]


def make_room(workdir: str | Path, needed: int, budget: int, keep: Path | None = None) -> list[Path]:
    """Remove the least recently used extractions under ``workdir`` until ``needed`` more bytes fit in ``budget``;
    returns the folders removed."""
    removed = []
    existing = [(f, n) for f, n in extractions(workdir) if f != keep]
    used = sum(n for _, n in existing)
    for folder, size in existing:
        if used + needed <= budget:
            break
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
        used -= size
    return removed


def extraction_folder(data: bytes, workdir: str | Path) -> Path:
    """Where :func:`open_zip` unpacks the archive ``data`` (one folder per content); it holds ``.complete`` once
    the extraction finished, and is gone after a clean-up made room for other archives."""
    return Path(workdir) / f"zip-{hashlib.sha1(data).hexdigest()[:16]}"


def open_zip(source: str | Path | bytes, workdir: str | Path, name: str | None = None,
             max_files: int = MAX_IMAGES, max_bytes: int = MAX_ZIP_BYTES, budget: int | None = None,
             progress: Progress | None = None) -> Dataset:
    """Extract a zip (of either folder layout) safely under ``workdir`` and open it with :func:`open_folder`.

    The archive is extracted once per content (a folder named by its hash). Zip-slip paths, links, encrypted
    entries and archives above ``max_files`` files or ``max_bytes`` uncompressed bytes raise :class:`DatasetError`
    (see :func:`xai_core.data.archive.safe_extract_zip`). All extractions together stay within ``budget`` bytes
    (default :func:`disk_budget`): the least recently used ones are removed to make room, and an archive larger than
    the budget is refused before anything is written. On any refusal or error its folder is removed again.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    target = extraction_folder(data, workdir)
    digest = target.name.removeprefix("zip-")
    done = target / ".complete"
    budget = disk_budget() if budget is None else int(budget)
    with _EXTRACTING:
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)  # left by an interrupted extraction
            declared = declared_size(data)
            limit = min(max_bytes, budget)
            if declared > limit:
                which = "the disk budget for unpacked archives" if budget < max_bytes else "the most one archive may"
                raise DatasetError(f"The archive unpacks to {declared / 1024**2:,.1f} MB, more than {which} "
                                   f"({limit / 1024**2:,.1f} MB). Upload a smaller archive (e.g. a sample per class).")
            make_room(workdir, declared, budget, keep=target)
            try:
                files = safe_extract_zip(data, target / "data", max_files=max_files, max_bytes=limit)
                done.write_text(str(sum(f.stat().st_size for f in files)))
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
        now = time.time_ns()
        os.utime(done, ns=(now, now))  # most recently used (explicit ns: the kernel's own stamp is coarse)
    display = name or (Path(source).name if not isinstance(source, bytes) else "archive.zip")
    try:
        return open_folder(target / "data", name=display, key=f"zip:{digest}", progress=progress)
    except BaseException:
        with _EXTRACTING:
            shutil.rmtree(target, ignore_errors=True)  # e.g. no images in it: nothing stays on disk
        raise


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name).strip().lower()


def model_labels(dataset: Dataset, class_names: Sequence[str],
                 wnids: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Map a data set's labels onto a model's classes.

    A class folder matches a model class by name (case, spaces, ``_`` and ``-`` ignored), by WordNet id when
    ``wnids`` are given (ImageNet folders named ``n01440764``), or by index when every folder is a number.

    Returns
    -------
    labels : int64 ``(N,)`` model class per image, ``-1`` where the image has no label or its folder matches no
        model class.
    unmatched : class folder names that match no model class.
    """
    by_name = {_norm(c): k for k, c in enumerate(class_names)}
    by_wnid = {w: k for k, w in enumerate(wnids or ())}
    numeric = bool(dataset.class_names) and all(c.isdigit() for c in dataset.class_names)
    mapping: dict[int, int] = {}
    unmatched: list[str] = []
    for d, c in enumerate(dataset.class_names):
        if _norm(c) in by_name:
            mapping[d] = by_name[_norm(c)]
        elif c in by_wnid:
            mapping[d] = by_wnid[c]
        elif numeric and int(c) < len(class_names):
            mapping[d] = int(c)
        else:
            unmatched.append(c)
    lut = np.array([mapping.get(d, -1) for d in range(len(dataset.class_names))] + [-1], dtype=np.int64)
    return lut[dataset.labels], unmatched
