"""An uploaded model file is hashed once per upload, not on every rerun (ui/uploads.register_uploaded_file)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ui.uploads import register_upload, register_uploaded_file, uploads


@dataclass
class FakeUpload:  # the parts of Streamlit's UploadedFile the function reads
    file_id: str
    name: str
    data: bytes
    reads: int = field(default=0)

    def getvalue(self) -> bytes:
        self.reads += 1
        return self.data


def test_an_upload_is_read_and_hashed_once_and_keyed_by_its_content():
    file = FakeUpload("id-1", "net.keras", b"model bytes " * 1000)
    key = register_uploaded_file(file, "auto")
    assert key == register_upload(file.data, file.name, "auto"), "the same key as hashing the bytes"
    assert key in uploads()
    for _ in range(3):  # reruns
        assert register_uploaded_file(file, "auto") == key
    assert file.reads == 1
    other_options = register_uploaded_file(file, "unit", ["a", "b"])
    assert other_options != key and file.reads == 2, "other options are another model key"
    again = FakeUpload("id-2", "net.keras", file.data)  # the same file uploaded again
    assert register_uploaded_file(again, "auto") == key
