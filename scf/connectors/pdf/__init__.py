"""PDF ingestion connector (pdfplumber, tesseract OCR): text, tables and metadata from untrusted PDFs.

`connector.py` holds the class; `requests.py`, `source.py`, `results.py` and `errors.py` are the pure
parts (parameters and page selections, where bytes come from, reply shapes, the error tables);
`sandbox.py` runs `extract.py`, the only code that parses PDF, in a limited child process.
"""

from scf.connectors.pdf.connector import PDFIngestionConnector

__all__ = ["PDFIngestionConnector"]
