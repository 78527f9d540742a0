"""The documents an applicant stamps: a small PDF, its title, the upload body and the serial.

>>> build_multipart(b"%PDF-1.4", "surat.pdf", boundary="b")[1][:40]
b'--b\\r\\nContent-Disposition: form-data; nam'
"""

from __future__ import annotations

import re
import uuid

SERIAL_RE = re.compile(rb"\(SN: ([A-Z0-9]{8,64})\)")


def document_serial(pdf: bytes) -> str:
    """The e-Meterai serial number printed on a stamped PDF ('' if none is found).

    >>> document_serial(b"%PDF-1.4 BT (e-Meterai 10000) ' (SN: ABCDEFGHJKLMNPQRSTUV23) ' ET")
    'ABCDEFGHJKLMNPQRSTUV23'
    """
    m = SERIAL_RE.search(pdf)
    return m.group(1).decode("ascii") if m else ""


_PDF_OBJECTS = (
    b"<< /Type /Catalog /Pages 2 0 R >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
    b"/Resources << /Font << /F1 5 0 R >> >> >>",
    None,  # 4: the page's content stream, the only part that depends on the title
    b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
)


def _pdf_object(i: int, body: bytes) -> bytes:
    return f"{i} 0 obj\n".encode() + body + b"\nendobj\n"


# the header and objects 1-3, with their offsets (the same for every title)
_PDF_HEAD = b"%PDF-1.4\n"
_PDF_HEAD_OFFSETS: list[int] = []
for _i in range(3):
    _PDF_HEAD_OFFSETS.append(len(_PDF_HEAD))
    _PDF_HEAD += _pdf_object(_i + 1, _PDF_OBJECTS[_i])  # type: ignore[arg-type]
_PDF_FONT = _pdf_object(5, _PDF_OBJECTS[4])  # type: ignore[arg-type]
_PDF_XREF_HEAD = f"xref\n0 {len(_PDF_OBJECTS) + 1}\n0000000000 65535 f \n".encode()
_PDF_TRAILER = f"trailer\n<< /Size {len(_PDF_OBJECTS) + 1} /Root 1 0 R >>\nstartxref\n".encode()


def pdf_document(title: str) -> bytes:
    """A small valid one-page PDF carrying `title`.

    Objects 1-3 and 5 are the same for every title and made once; only the content
    stream, the offsets after it and the cross-reference table are made per call.

    >>> pdf_document("Surat Lamaran").startswith(b"%PDF-1.4")
    True
    """
    text = title.replace("\\", "").replace("(", "").replace(")", "")[:80]
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1", "replace")
    content = _pdf_object(4, b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
                          + b"\nendstream")
    at_content = len(_PDF_HEAD)
    at_font = at_content + len(content)
    xref = at_font + len(_PDF_FONT)
    offsets = (*_PDF_HEAD_OFFSETS, at_content, at_font)
    return b"".join((_PDF_HEAD, content, _PDF_FONT, _PDF_XREF_HEAD,
                     *(f"{off:010d} 00000 n \n".encode() for off in offsets),
                     _PDF_TRAILER, f"{xref}\n%%EOF\n".encode()))


def document_title(i: int) -> str:
    """The title of an applicant's document `i` (0-based).

    >>> document_title(0), document_title(5)
    ('Surat Lamaran', 'Surat Pernyataan Tambahan')
    """
    return ("Surat Lamaran", "Surat Pernyataan", "Surat Pernyataan Tambahan")[min(i, 2)]


def build_multipart(
    data: bytes, filename: str, *, boundary: str | None = None
) -> tuple[str, bytes]:
    """(content type, body) of a multipart/form-data upload with one field `document`."""
    b = boundary or uuid.uuid4().hex
    body = (
        (
            f'--{b}\r\nContent-Disposition: form-data; name="document"; filename="{filename}"\r\n'
            f"Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{b}--\r\n".encode()
    )
    return f"multipart/form-data; boundary={b}", body
