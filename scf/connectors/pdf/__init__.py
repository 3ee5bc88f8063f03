"""PDF ingestion connector (pdfplumber, tesseract OCR): text, tables and metadata from untrusted PDFs.

`connector.py` holds the class and its operation table. The parser it calls is shared with MinIO's
`ingest` and lives in `scf/connectors/parsing/pdf/` (parameters and page selections, where bytes come
from, the sandboxed child process, reply shapes, the error tables).
"""

from scf.connectors.pdf.connector import PDFIngestionConnector

__all__ = ["PDFIngestionConnector"]
