"""The PDF parser child's OCR: pages rendered with pdfium (through pdfplumber), read by tesseract.

A sibling of `extract.py`, loaded by it in the child (standard library only at import).
"""

from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pdfplumber.page import Page

    from scf.connectors.parsing.pdf.extract import Job

MAX_OCR_PIXELS = 25_000_000  # a page is rendered at a lower dpi rather than past ~25 megapixels
OCR_PAGE_TIMEOUT = 120.0


def render_dpi(width_pt: float, height_pt: float, wanted: int, max_pixels: int = MAX_OCR_PIXELS) -> int:
    """The wanted resolution, lowered so the rendered page stays under `max_pixels`."""
    inches = max(width_pt, 1.0) * max(height_pt, 1.0) / (72.0 * 72.0)
    return max(1, min(wanted, int(math.sqrt(max_pixels / inches))))


class Ocr:
    """Renders pages with pdfium (through pdfplumber) and reads them with the tesseract binary.

    Tesseract runs on stdin/stdout, so no temporary file is written (RLIMIT_FSIZE stays 0), under the
    limits this process carries. A failure on one page is that page's `ocr_error`, never the job's.
    """

    def __init__(self, job: Job) -> None:
        self.job = job
        self.binary = shutil.which("tesseract")
        self.pages_read = 0

    def read(self, page: Page) -> tuple[str | None, str | None]:
        if self.binary is None:
            return None, "tesseract is not installed on this worker"
        if self.pages_read >= self.job.max_ocr_pages:
            return None, f"not read: more than max_ocr_pages ({self.job.max_ocr_pages}) pages needed OCR"
        self.pages_read += 1
        dpi = render_dpi(float(page.width), float(page.height), self.job.ocr_resolution)
        try:
            image = page.to_image(resolution=dpi).original.convert("L")
        except MemoryError:
            raise
        except Exception as exc:  # pdfium refused the page: OCR of it fails, the rest goes on
            return None, f"the page could not be rendered ({type(exc).__name__})"
        png = io.BytesIO()
        image.save(png, format="PNG")
        del image
        return self._tesseract(png.getvalue(), dpi)

    def _tesseract(self, png: bytes, dpi: int) -> tuple[str | None, str | None]:
        assert self.binary is not None
        command = [self.binary, "stdin", "stdout", "-l", self.job.ocr_language, "--dpi", str(dpi)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_THREAD_LIMIT": "1"}
        if "TESSDATA_PREFIX" in os.environ:
            env["TESSDATA_PREFIX"] = os.environ["TESSDATA_PREFIX"]
        try:
            done = subprocess.run(  # noqa: S603 - fixed binary; the language matches OCR_LANGUAGE_PATTERN
                command, input=png, capture_output=True, env=env, timeout=OCR_PAGE_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            return None, f"tesseract took more than {OCR_PAGE_TIMEOUT:.0f} s on this page"
        if done.returncode != 0:
            return None, "tesseract failed: " + _tesseract_reason(done.stderr)
        return done.stdout.decode("utf-8", "replace").strip(), None


def _tesseract_reason(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    loading = [line for line in lines if line.startswith("Failed loading language")]
    return (loading or lines or ["no message"])[-1][:200]
