"""PDFs made by the tests: fpdf2 documents (text, tables, a scanned page, encryption) and hand-built bombs.

Nothing is downloaded. The bombs are raw PDF bytes written object by object: a cyclic page tree,
nested FlateDecode layers that inflate to gigabytes, Form XObjects that draw each other, and forms
that fan out (each drawing the next ten times) so that parsing burns CPU without ending.
"""

from __future__ import annotations

import base64
import shutil
import zlib

import pytest
from fpdf import FPDF
from fpdf.enums import EncryptionMethod
from PIL import Image, ImageDraw, ImageFont

from tests.support.services import IN_CI

PASSWORD = "pdf-canary-password-71c3"
TABLE = [["Fruit", "Price"], ["apple", "1.00"], ["pear", "2.50"]]
SCANNED_LINES = ("SCANNED INVOICE", "Total amount 4521")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def require_tesseract() -> None:
    """OCR tests run for real: a missing tesseract fails under CI and skips on a developer machine."""
    if shutil.which("tesseract") is not None:
        return
    message = "tesseract is not installed (Debian package tesseract-ocr)"
    if IN_CI:
        pytest.fail(message + "; CI must install it")
    pytest.skip(message)


# --- documents --------------------------------------------------------------------------------------


def text_pdf(pages: int = 3, *, title: str = "Quarterly report") -> bytes:
    """`pages` pages saying "Page <n> says hello"; page 1 also holds TABLE, drawn with ruled cells."""
    pdf = FPDF()
    pdf.set_title(title)
    pdf.set_author("SCF tests")
    pdf.set_font("Helvetica", size=12)
    for n in range(1, pages + 1):
        pdf.add_page()
        pdf.multi_cell(0, 8, f"Page {n} says hello.")
        if n == 1:
            with pdf.table() as table:
                for cells in TABLE:
                    row = table.row()
                    for cell in cells:
                        row.cell(cell)
    return bytes(pdf.output())


def long_text_pdf(pages: int, words_per_page: int) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=8)
    for n in range(1, pages + 1):
        pdf.add_page()
        pdf.multi_cell(0, 4, " ".join(f"p{n}w{i}" for i in range(words_per_page)))
    return bytes(pdf.output())


def scanned_pdf() -> bytes:
    """One A4 page that is only an image of SCANNED_LINES (200 dpi): no text layer at all."""
    image = Image.new("L", (1654, 2339), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=64)
    for i, line in enumerate(SCANNED_LINES):
        draw.text((150, 300 + 150 * i), line, fill=0, font=font)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(image, x=0, y=0, w=210, h=297)
    return bytes(pdf.output())


def mixed_pdf() -> bytes:
    """Page 1 has a text layer, page 2 is scanned."""
    image = Image.new("L", (1654, 1169), 255)
    ImageDraw.Draw(image).text((150, 300), "HELLO FROM A SCAN", fill=0, font=ImageFont.load_default(size=64))
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Typed text on the first page.")
    pdf.add_page()
    pdf.image(image, x=0, y=0, w=210)
    return bytes(pdf.output())


def encrypted_pdf(user_password: str = PASSWORD) -> bytes:
    """AES-128, opened by `user_password` ("" makes it readable by anyone, yet still encrypted)."""
    pdf = FPDF()
    pdf.set_encryption(
        owner_password="owner-" + PASSWORD,
        user_password=user_password,
        encryption_method=EncryptionMethod.AES_128,
    )
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Top secret text")
    return bytes(pdf.output())


# --- raw PDFs and bombs -----------------------------------------------------------------------------


def raw_pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF from object bodies (object n is objects[n-1]) with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%b\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def stream(entries: bytes, data: bytes) -> bytes:
    return b"<< %b /Length %d >>\nstream\n%b\nendstream" % (entries, len(data), data)


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
ONE_PAGE_TREE = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"


def page(entries: bytes = b"") -> bytes:
    return b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] %b >>" % entries


def cyclic_page_tree_pdf() -> bytes:
    """The root's Kids hold the root itself: a reader that follows Kids blindly never ends."""
    return raw_pdf([CATALOG, b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>", page()])


def zeros_deflate(size: int, chunk: int = 1 << 20) -> bytes:
    """A zlib stream of `size` zero bytes, made without compressing them (seconds, not minutes).

    After a full flush a deflate compressor starts afresh, so every `chunk` of zeros compresses to the
    same bytes: repeat them, close with an empty final block and the Adler-32 of the zeros.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    count = size // chunk
    adler = ((count * chunk) % 65521) << 16 | 1
    return b"\x78\xda" + block * count + final + adler.to_bytes(4, "big")


def flate_bomb_pdf(inflated: int = 4 << 30, layers: int = 3) -> bytes:
    """A content stream behind `layers` FlateDecode filters that inflates to `inflated` bytes (4 GiB)."""
    data = zeros_deflate(inflated)
    for _ in range(layers - 1):
        data = zlib.compress(data, 9)
    filters = b"/Filter [" + b" /FlateDecode" * layers + b" ]"
    return raw_pdf([CATALOG, ONE_PAGE_TREE, page(b"/Contents 4 0 R /Resources << >>"), stream(filters, data)])


def _form(draws: bytes, resources: bytes) -> bytes:
    return stream(b"/Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << %b >>" % resources, draws)


def circular_xobject_pdf() -> bytes:
    """Form A draws form B, which draws form A."""
    return raw_pdf(
        [
            CATALOG,
            ONE_PAGE_TREE,
            page(b"/Contents 4 0 R /Resources << /XObject << /A 5 0 R >> >>"),
            stream(b"", b"/A Do"),
            _form(b"/B Do", b"/XObject << /B 6 0 R >>"),
            _form(b"/A Do", b"/XObject << /A 5 0 R >>"),
        ]
    )


def fanout_xobject_pdf(depth: int = 9, fanout: int = 10) -> bytes:
    """Form k draws form k+1 `fanout` times: fanout**depth drawings of a harmless-looking page."""
    first = 5
    forms = []
    for level in range(depth):
        number = first + level
        if level == depth - 1:
            forms.append(_form(b"0 0 m 1 1 l S", b""))
        else:
            forms.append(_form(b"/F Do " * fanout, b"/XObject << /F %d 0 R >>" % (number + 1)))
    return raw_pdf(
        [
            CATALOG,
            ONE_PAGE_TREE,
            page(b"/Contents 4 0 R /Resources << /XObject << /F %d 0 R >> >>" % first),
            stream(b"", b"/F Do"),
            *forms,
        ]
    )
