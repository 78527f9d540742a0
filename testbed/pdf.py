"""The stamped PDF: a one-page PDF that carries the e-Meterai serial number.

The applicant's original document is embedded as an attachment, and its
SHA-256 is printed on the page, so the stamp is tied to the document::

    >>> pdf = stamped_pdf(b"%PDF-1.4 original", serial="ABCDEFGHJKLMNPQRSTUV23", stamp_id="stp_1")
    >>> pdf.startswith(b"%PDF-1.4") and b"ABCDEFGHJKLMNPQRSTUV23" in pdf
    True
    >>> pdf.rstrip().endswith(b"%%EOF")
    True
"""

from __future__ import annotations

import hashlib
import io
import logging
import re

import pypdf
import pypdf.generic

_HEADER = re.compile(rb"%PDF-[12]\.[0-9]")
_STARTXREF = re.compile(rb"startxref\s+([0-9]{1,12})\s+%%EOF\s*\Z")
_XREF_AT = re.compile(rb"\s*(?:xref\b|[0-9]+\s+[0-9]+\s+obj\b)")
logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed uploads are answered, not logged


def pdf_problem(data: bytes) -> str | None:
    """Why ``data`` is not a well-formed PDF, or None.

    Checks the structure, not just the magic bytes: a ``%PDF-x.y`` header in the
    first 1 KiB; a ``startxref`` whose offset points at a cross-reference table or
    stream and is followed by ``%%EOF`` at the end (after the last incremental
    update); then pypdf reads the trailer, the document catalog and its page tree
    (at least one page, unless the file is encrypted)::

        >>> pdf_problem(stamped_pdf(b"x", serial="S", stamp_id="stp_1")) is None
        True
        >>> pdf_problem(b"%PDF-1.4 but nothing else")
        'the document has no startxref / %%EOF trailer at its end (a truncated or non-PDF file)'
    """
    head = data.find(b"%PDF-", 0, 1024)
    if head < 0 or not _HEADER.match(data, head):
        return "the document is not a PDF (no %PDF-x.y header in its first 1 KiB)"
    m = _STARTXREF.search(data[-1024:])
    if m is None:
        return (
            "the document has no startxref / %%EOF trailer at its end (a truncated or non-PDF file)"
        )
    offset = head + int(m.group(1))  # offsets count from the header (garbage before it is ok)
    at_xref = offset < len(data) and _XREF_AT.match(data, offset)
    if not at_xref and not _XREF_AT.match(data, int(m.group(1))):
        return "the document's startxref does not point at a cross-reference table"
    return _catalog_problem(data)


def _catalog_problem(data: bytes) -> str | None:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        root = reader.trailer.get("/Root")
        root = root.get_object() if root is not None else None
        if not isinstance(root, pypdf.generic.DictionaryObject) or "/Pages" not in root:
            return "the document has no catalog with a page tree (trailer /Root)"
        if reader.is_encrypted:
            return None  # the page tree may be readable only with the password
        # the page tree's root; its /Count and /Kids, not every page
        pages = root["/Pages"].get_object()
        if not isinstance(pages, pypdf.generic.DictionaryObject):
            return "the document's page tree is not a dictionary"
        count, kids = pages.get("/Count"), pages.get("/Kids")
        kids = kids.get_object() if kids is not None else None
        if not isinstance(count, int) or count < 1 or not isinstance(kids, list) or not kids:
            return "the document has no pages"
    except Exception as e:  # noqa: BLE001 - any parse failure of untrusted bytes is the client's problem
        return f"the document is not a readable PDF ({type(e).__name__})"
    return None


def _escape(text: str) -> bytes:
    return (
        text.replace("\\", "\\\\")
        .replace("(", "\\(")
        .replace(")", "\\)")
        .encode("latin-1", "replace")
    )


def stamped_pdf(original: bytes, *, serial: str, stamp_id: str, issued_at: str = "") -> bytes:
    """Build the stamped PDF (see the module docstring)."""
    digest = hashlib.sha256(original).hexdigest()
    lines = [
        "e-Meterai 10000 (surgecast testbed)",
        f"SN: {serial}",
        f"stamp: {stamp_id}",
        f"issued: {issued_at}",
        f"document sha256: {digest[:32]}",
        f"                 {digest[32:]}",
    ]
    text = (
        b"BT /F1 12 Tf 72 720 Td 16 TL "
        + b" ".join(b"(" + _escape(s) + b") '" for s in lines)
        + b" ET"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R "
        b"/Names << /EmbeddedFiles << /Names [(original.pdf) 7 0 R] >> >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /EmbeddedFile /Length %d >>\nstream\n" % len(original)
        + original
        + b"\nendstream",
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
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 8 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
