"""HTTP API ingestion (httpx): ingest, preview and validate JSON records from REST APIs, behind an SSRF guard.

`connector.py` holds the class and its operation table; the SSRF guard, the guarded client and the HTTP
error tables are the shared `scf.connectors.web`; `auth.py`, `paging.py`, `records.py`, `requests.py`,
`settings.py` and `tokens.py` are pure parts, `exchange.py` and `operations.py` the I/O around them.
"""

from scf.connectors.api.connector import ApiIngestionConnector

__all__ = ["ApiIngestionConnector"]
