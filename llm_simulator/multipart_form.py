"""``multipart/form-data`` bodies, read with the standard library: the Files API's upload is the
one such body the simulator takes, and one parser is not worth a dependency."""

from dataclasses import dataclass
from email.message import Message

__all__ = ["FormError", "FormPart", "form_parts"]


class FormError(ValueError):
    """The body is not the multipart form its ``Content-Type`` announces."""


@dataclass(frozen=True)
class FormPart:
    name: str
    data: bytes
    filename: str | None = None


def form_parts(content_type: str, body: bytes) -> dict[str, FormPart]:
    """The form's fields by name (a repeated name: the last one)."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise FormError("not a multipart/form-data body")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise FormError("the form has no closing boundary")
    parts: dict[str, FormPart] = {}
    for chunk in chunks[1:-1]:
        part = _part(chunk)
        parts[part.name] = part
    return parts


def _part(chunk: bytes) -> FormPart:
    head, separator, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
    if not separator:
        raise FormError("a part has no header")
    headers = Message()
    for line in head.decode("utf-8", errors="replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip()] = value.strip()
    if "content-disposition" not in headers:
        raise FormError("a part has no Content-Disposition")
    field_name = headers.get_param("name", header="content-disposition")
    filename = headers.get_param("filename", header="content-disposition")
    if not isinstance(field_name, str):
        raise FormError("a part has no name")
    return FormPart(field_name, data.removesuffix(b"\r\n"), filename if isinstance(filename, str) else None)
