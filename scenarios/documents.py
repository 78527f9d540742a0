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


def pdf_document(title: str) -> bytes:
    """A small valid one-page PDF carrying `title`.

    >>> pdf_document("Surat Lamaran").startswith(b"%PDF-1.4")
    True
    """
    text = title.replace("\\", "").replace("(", "").replace(")", "")[:80]
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1", "replace")
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + o + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


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
