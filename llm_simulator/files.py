"""Files in memory, as the Files API keeps them: uploaded batch inputs and batches' output files.

Bounded by ``files_kept_bytes``: past it the oldest files are forgotten first (the newest always
stays), so a long load test does not grow the simulator without bound. A restart forgets them all.
"""

import json
import secrets
import string
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llm_simulator import batch_refusals, refusals
from llm_simulator.multipart_form import FormError, FormPart, form_parts
from llm_simulator.protocol import ApiError

__all__ = ["FileStore", "StoredFile", "uploaded"]

# CreateFileRequest's purposes, in the published description's order.
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
# "By default, files with purpose=batch expire after 30 days" (FileExpirationAfter).
BATCH_FILE_SECONDS = 30 * 24 * 3600
_EXPIRY_RANGE = (3600, 2592000)
_FORM_FIELDS = frozenset({"file", "purpose", "expires_after[anchor]", "expires_after[seconds]"})
_ID_ALPHABET = string.ascii_letters + string.digits


def new_file_id() -> str:
    return "file-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


@dataclass
class StoredFile:
    filename: str
    purpose: str
    content: bytes
    expires_in_seconds: int | None = None
    id: str = field(default_factory=new_file_id)
    created_at: int = field(default_factory=lambda: int(time.time()))

    def wire(self) -> dict[str, Any]:
        """The ``file`` object (OpenAIFile)."""
        expires = None if self.expires_in_seconds is None else self.created_at + self.expires_in_seconds
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "expires_at": expires,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


class FileStore:
    def __init__(self, kept_bytes: Callable[[], int]) -> None:
        self._kept_bytes = kept_bytes
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._bytes = 0

    def add(self, stored: StoredFile) -> StoredFile:
        self._files[stored.id] = stored
        self._bytes += len(stored.content)
        while self._bytes > self._kept_bytes() and len(self._files) > 1:
            _, oldest = self._files.popitem(last=False)
            self._bytes -= len(oldest.content)
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def delete(self, file_id: str) -> bool:
        stored = self._files.pop(file_id, None)
        if stored is None:
            return False
        self._bytes -= len(stored.content)
        return True

    def forget_all(self) -> int:
        forgotten = len(self._files)
        self._files.clear()
        self._bytes = 0
        return forgotten


def uploaded(content_type: str, body: bytes) -> StoredFile | ApiError:
    """The file a ``POST /v1/files`` form uploads, or what the API answers instead."""
    try:
        form = form_parts(content_type, body)
    except FormError:
        return refusals.invalid("The request body must be a multipart/form-data form with 'file' and 'purpose'.")
    if unknown := sorted(set(form) - _FORM_FIELDS):
        return refusals.unknown_parameter(unknown[0])
    if "file" not in form:
        return refusals.missing_parameter("file")
    if "purpose" not in form:
        return refusals.missing_parameter("purpose")
    purpose = form["purpose"].data.decode("utf-8", errors="replace")
    if purpose not in UPLOAD_PURPOSES:
        return refusals.invalid_value("purpose", purpose, UPLOAD_PURPOSES)
    file = form["file"]
    expires = _expiry(form.get("expires_after[seconds]"), purpose)
    if isinstance(expires, ApiError):
        return expires
    if purpose == "batch" and (refused := _batch_input_refusal(file.filename or "", file.data)) is not None:
        return refused
    return StoredFile(filename=file.filename or "file", purpose=purpose, content=file.data, expires_in_seconds=expires)


def _expiry(seconds_part: FormPart | None, purpose: str) -> int | ApiError | None:
    default = BATCH_FILE_SECONDS if purpose == "batch" else None
    if seconds_part is None:
        return default
    raw = seconds_part.data.decode("utf-8", errors="replace")
    if not raw.isdigit():
        return refusals.invalid_type("expires_after.seconds", ["an integer"], "a string")
    seconds = int(raw)
    low, high = _EXPIRY_RANGE
    if not low <= seconds <= high:
        return refusals.out_of_range(
            "expires_after.seconds", seconds, low if seconds < low else high, below=seconds < low, integer=True
        )
    return seconds


def _batch_input_refusal(filename: str, data: bytes) -> ApiError | None:
    """A batch input file must be JSONL."""
    if len(data) > batch_refusals.MAX_INPUT_BYTES:
        return batch_refusals.file_too_large(len(data))
    first = next((line for line in data.split(b"\n") if line.strip()), b"")
    try:
        readable = isinstance(json.loads(first), dict)
    except ValueError:
        readable = False
    # Only the first line is read here: the others are checked when a batch validates the file.
    if not filename.endswith(".jsonl") or not readable:
        return batch_refusals.not_jsonl()
    return None
