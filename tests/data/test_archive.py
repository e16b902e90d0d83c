"""Safe zip extraction (xai_core.data.archive): path traversal, symlinks, zip bombs, file counts."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest
from model_files import make_zip

from xai_core.data.archive import safe_extract_zip
from xai_core.errors import DatasetError


def test_extract_regular_archive(tmp_path: Path) -> None:
    data = make_zip({"a/one.txt": b"1", "a/b/two.txt": b"22", "top.txt": b"333"})
    out = safe_extract_zip(data, tmp_path / "out")
    root = (tmp_path / "out").resolve()
    assert out == [root / "a/one.txt", root / "a/b/two.txt", root / "top.txt"]
    assert [p.read_bytes() for p in out] == [b"1", b"22", b"333"]
    (tmp_path / "x.zip").write_bytes(data)
    assert len(safe_extract_zip(tmp_path / "x.zip", tmp_path / "out2")) == 3  # from a path too


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/abs/evil.txt", "C:/evil.txt",
                                  "..\\evil.txt"])
def test_extract_refuses_paths_leaving_the_target(tmp_path: Path, name: str) -> None:
    data = make_zip({"ok.txt": b"fine", name: b"evil"})
    assert name in zipfile.ZipFile(io.BytesIO(data)).namelist()  # the archive really holds that name
    with pytest.raises(DatasetError, match="outside the extraction folder"):
        safe_extract_zip(data, tmp_path / "out")
    assert not list(tmp_path.rglob("evil.txt")) and not (tmp_path / "out" / "ok.txt").exists()


def test_extract_refuses_symlinks(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DatasetError, match="symbolic link"):
        safe_extract_zip(buf.getvalue(), tmp_path / "out")
    assert not (tmp_path / "out" / "link").exists()


def _bomb(size: int, declared: int | None = None) -> bytes:
    """``size`` zero bytes deflated; optionally with a lying uncompressed size in both headers."""
    data = bytearray(make_zip({"zeros.bin": bytes(size)}))
    if declared is not None:
        assert data[:4] == b"PK\x03\x04"
        struct.pack_into("<I", data, 22, declared)  # local file header: uncompressed size
        central = data.find(b"PK\x01\x02")
        struct.pack_into("<I", data, central + 24, declared)  # central directory: uncompressed size
    return bytes(data)


def test_extract_refuses_zip_bomb_by_declared_size(tmp_path: Path) -> None:
    bomb = _bomb(50 * 1024**2)
    assert len(bomb) < 200_000  # 50 MB compressed to a tiny upload
    with pytest.raises(DatasetError, match="unpacks to 50.0 MB; at most 10.0 MB"):
        safe_extract_zip(bomb, tmp_path / "out", max_bytes=10 * 1024**2)
    assert not (tmp_path / "out").exists()  # refused before anything was created


def test_extract_refuses_zip_bomb_with_lying_header(tmp_path: Path) -> None:
    bomb = _bomb(50 * 1024**2, declared=1024)
    assert zipfile.ZipFile(io.BytesIO(bomb)).infolist()[0].file_size == 1024
    with pytest.raises(DatasetError):
        safe_extract_zip(bomb, tmp_path / "out", max_bytes=10 * 1024**2)
    written = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == 0  # partial output removed; never more than the declared bytes were read


def test_extract_counts_the_bytes_it_really_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CPython's zipfile already stops at the declared size (CRC error above); the byte count of our own
    is the independent guard. Simulate a decompressor that yields more than the header says."""
    data = make_zip({"small.bin": b"x" * 100})
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info, *a, **k: io.BytesIO(bytes(3 * 1024**2)))
    with pytest.raises(DatasetError, match="more bytes than its header declares"):
        safe_extract_zip(data, tmp_path / "out", max_bytes=10 * 1024**2)
    assert not (tmp_path / "out" / "small.bin").exists()


def test_extract_refuses_too_many_files(tmp_path: Path) -> None:
    data = make_zip({f"f{i}.txt": b"x" for i in range(6)})
    with pytest.raises(DatasetError, match="holds 6 files; at most 5"):
        safe_extract_zip(data, tmp_path / "out", max_files=5)
    assert len(safe_extract_zip(data, tmp_path / "ok", max_files=6)) == 6


def test_extract_refuses_non_zip_input(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a zip archive"):
        safe_extract_zip(b"just some text, not a zip", tmp_path / "out")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    with pytest.raises(DatasetError, match="'photo.jpg' is not a zip archive"):
        safe_extract_zip(tmp_path / "photo.jpg", tmp_path / "out")
    with pytest.raises(DatasetError, match="does not exist"):
        safe_extract_zip(tmp_path / "missing.zip", tmp_path / "out")


# --------------------------------------------------------------------------- limits are exact, refusals leave nothing
def test_an_archive_exactly_at_the_byte_limit_is_accepted_one_byte_more_is_not(tmp_path: Path) -> None:
    limit = 1024**2
    assert len(safe_extract_zip(_bomb(limit), tmp_path / "at", max_bytes=limit)) == 1
    with pytest.raises(DatasetError, match="at most 1.0 MB"):
        safe_extract_zip(_bomb(limit + 1), tmp_path / "over", max_bytes=limit)
    assert not (tmp_path / "over").exists()


def test_written_bytes_are_checked_at_the_limit_too(tmp_path: Path) -> None:
    """A header that declares exactly the limit but unpacks to one byte more is stopped while writing."""
    limit = 1024**2
    with pytest.raises(DatasetError):
        safe_extract_zip(_bomb(limit + 1, declared=limit), tmp_path / "out", max_bytes=limit)
    assert not (tmp_path / "out").exists(), "the folder this call created is gone"


def test_a_refused_zip_slip_archive_leaves_no_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="outside the extraction folder"):
        safe_extract_zip(make_zip({"ok.txt": b"fine", "../evil.txt": b"evil"}), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_extracting_into_an_existing_folder_keeps_it_on_refusal(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    with pytest.raises(DatasetError):
        safe_extract_zip(_bomb(2048, declared=10), tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["mine.txt"]
