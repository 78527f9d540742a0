"""The stamped PDF: a one-page PDF that carries the e-Meterai serial number.

The applicant's original document is embedded as an attachment, and its
SHA-256 is printed on the page, so the stamp is tied to the document::

    >>> pdf = stamped_pdf(b"%PDF-1.4 original", serial="ABCDEFGHJKLMNPQRSTUV23", stamp_id="stp_1")
    >>> pdf.startswith(b"%PDF-1.4") and b"ABCDEFGHJKLMNPQRSTUV23" in pdf and pdf.rstrip().endswith(b"%%EOF")
    True
"""

from __future__ import annotations

import hashlib


def looks_like_pdf(data: bytes) -> bool:
    """True if ``data`` starts like a PDF file (``%PDF-`` within the first 1 KiB).

    >>> looks_like_pdf(b"%PDF-1.7\\n..."), looks_like_pdf(b"hello")
    (True, False)
    """
    return b"%PDF-" in data[:1024]


def _escape(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1", "replace")


def stamped_pdf(original: bytes, *, serial: str, stamp_id: str, issued_at: str = "") -> bytes:
    """Build the stamped PDF (see the module docstring)."""
    digest = hashlib.sha256(original).hexdigest()
    lines = ["e-Meterai 10000 (surgecast testbed)", f"SN: {serial}", f"stamp: {stamp_id}",
             f"issued: {issued_at}", f"document sha256: {digest[:32]}", f"                 {digest[32:]}"]
    text = b"BT /F1 12 Tf 72 720 Td 16 TL " + b" ".join(b"(" + _escape(s) + b") '" for s in lines) + b" ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(original.pdf) 7 0 R] >> >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /EmbeddedFile /Length %d >>\nstream\n" % len(original) + original + b"\nendstream",
        b"<< /Type /Filespec /F (original.pdf) /EF << /F 6 0 R >> >>",
        b"<< /Title (e-Meterai " + _escape(serial) + b") /Subject (SN " + _escape(serial) + b") >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 8 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
