"""HTTP API ingestion (httpx): ingest, preview and validate JSON records from REST APIs, behind an SSRF guard.

`connector.py` holds the class; `guard.py` is the SSRF guard's public face (the CSV and PDF connectors
fetch user-given URLs through it); `auth.py`, `paging.py`, `records.py`, `requests.py`, `settings.py` and
`errors.py` are pure parts, `exchange.py` and `operations.py` the I/O around them.
"""

from scf.connectors.api.connector import ApiIngestionConnector

__all__ = ["ApiIngestionConnector"]
