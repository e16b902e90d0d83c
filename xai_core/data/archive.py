"""Safe extraction of user-supplied zip archives (model uploads, data set uploads).

``zipfile.extractall`` trusts the archive. An upload is not trustworthy, so :func:`safe_extract_zip` refuses:

- entries whose path leaves the target folder (``../evil``, ``/etc/passwd``, ``C:\\x``: "zip slip"),
- symbolic links (they could point anywhere),
- encrypted entries,
- more files or more uncompressed bytes than the caps. The declared sizes are checked first, and the bytes
  actually written are counted as well, because the sizes in a zip header can lie (a "zip bomb").

Every refusal is a :class:`~xai_core.errors.DatasetError` whose message says what to do, and leaves nothing behind:
what was written is removed, and a target folder this call created is removed with it. The caps are inclusive (an
archive of exactly ``max_bytes`` is accepted, one byte more is not).

Ref. Snyk, "Zip Slip Vulnerability" (2018); CWE-22, CWE-409.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from xai_core.errors import DatasetError

_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.1f} MB"


def _open(source: str | Path | bytes) -> zipfile.ZipFile:
    label = "The uploaded file" if isinstance(source, (bytes, bytearray)) else f"'{Path(source).name}'"
    try:
        if isinstance(source, (bytes, bytearray)):
            return zipfile.ZipFile(io.BytesIO(bytes(source)))
        path = Path(source)
        if not path.is_file():
            raise DatasetError(f"{label} does not exist or is not a file.")
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise DatasetError(
            f"{label} is not a zip archive (or it is damaged). Pack the files with a zip tool "
            "(e.g. 'Compress' / 'Send to → Compressed folder') and upload the .zip file."
        ) from exc
    except OSError as exc:
        raise DatasetError(f"{label} could not be read: {exc}") from exc


def _check_name(info: zipfile.ZipInfo, root: Path) -> Path:
    """The resolved destination of ``info`` inside ``root``; :class:`DatasetError` if it would escape."""
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in parts or "\x00" in name:
        raise DatasetError(
            f"The archive contains an unsafe path '{name}' (absolute or with '..') that would be written "
            "outside the extraction folder. Re-create the zip from the folder itself, with relative paths only."
        )
    dest = (root / Path(*parts)).resolve() if parts else root
    if dest != root and root not in dest.parents:
        raise DatasetError(
            f"The archive entry '{name}' would be written outside the extraction folder. "
            "Re-create the zip with relative paths only."
        )
    return dest


def safe_extract_zip(
    source: str | Path | bytes,
    target_dir: Path,
    *,
    max_files: int = 20000,
    max_bytes: int = 2 * 1024**3,
) -> list[Path]:
    """Extract a zip archive into ``target_dir``, refusing anything unsafe.

    Parameters
    ----------
    source : path of a zip file, or its bytes (e.g. from an upload widget).
    target_dir : folder to extract into (created if needed); nothing is ever written outside it.
    max_files : most file entries accepted (folders do not count).
    max_bytes : most uncompressed bytes accepted (inclusive), declared and actually written.

    Returns
    -------
    list[Path]
        The extracted files (not folders), resolved, in archive order.

    Raises
    ------
    DatasetError
        Not a zip / damaged, an entry escaping ``target_dir`` (absolute path, ``..``), a symbolic link, an
        encrypted entry, or more than ``max_files`` files / ``max_bytes`` bytes. Files already written by this
        call are removed again, and ``target_dir`` too when this call created it.
    """
    target_dir = Path(target_dir)
    created = not target_dir.exists()
    try:
        return _extract(source, target_dir, max_files, max_bytes)
    except BaseException:
        if created:
            shutil.rmtree(target_dir, ignore_errors=True)
        raise


def declared_size(source: str | Path | bytes) -> int:
    """Uncompressed bytes an archive's headers declare for its files (checked again while extracting)."""
    with _open(source) as zf:
        return sum(i.file_size for i in zf.infolist() if not i.is_dir())


def _extract(source: str | Path | bytes, target_dir: Path, max_files: int, max_bytes: int) -> list[Path]:
    with _open(source) as zf:
        infos = zf.infolist()
        files = [i for i in infos if not i.is_dir()]
        if len(files) > max_files:
            raise DatasetError(
                f"The archive holds {len(files):,} files; at most {max_files:,} are accepted. "
                "Upload fewer files (e.g. a sample per class)."
            )
        declared = sum(i.file_size for i in files)
        if declared > max_bytes:
            raise DatasetError(
                f"The archive unpacks to {_mb(declared)}; at most {_mb(max_bytes)} are accepted. "
                "Upload a smaller archive."
            )
        root = target_dir.resolve()
        plan: list[tuple[zipfile.ZipInfo, Path]] = []
        for info in infos:
            dest = _check_name(info, root)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DatasetError(
                    f"The archive entry '{info.filename}' is a symbolic link; links are not accepted. "
                    "Zip the real files instead."
                )
            if info.flag_bits & 0x1:
                raise DatasetError(
                    f"The archive entry '{info.filename}' is password-protected; upload an unencrypted zip."
                )
            plan.append((info, dest))

        target_dir.mkdir(parents=True, exist_ok=True)  # only once every entry passed the checks
        written: list[Path] = []
        total = 0
        try:
            for info, dest in plan:
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                written.append(dest)
                size = 0
                with zf.open(info) as src, open(dest, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        size += len(chunk)
                        total += len(chunk)
                        if total > max_bytes or size > info.file_size:
                            raise DatasetError(
                                f"The archive entry '{info.filename}' unpacks to more bytes than its header "
                                f"declares, or the archive exceeds {_mb(max_bytes)} (a zip bomb?). "
                                "Extraction stopped; upload a regular zip archive."
                            )
                        out.write(chunk)
        except zipfile.BadZipFile as exc:
            _remove(written)
            raise DatasetError(
                f"The archive is damaged ({exc}). Re-create the zip and upload it again."
            ) from exc
        except DatasetError:
            _remove(written)
            raise
        except OSError as exc:
            _remove(written)
            raise DatasetError(f"Extracting the archive failed: {exc}") from exc
    return list(dict.fromkeys(written))


def _remove(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()
