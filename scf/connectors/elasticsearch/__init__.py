"""Elasticsearch connector (elasticsearch-py async): indices, bulk insert, get/update/delete, search.

`connector.py` holds the class; `names.py`, `paging.py`, `bulk.py`, `requests.py` and `settings.py` are
the pure parts (name checks, page tokens, ids and bulk summaries, request shapes, client arguments);
`errors.py` is the error table; `indices.py`, `documents.py` and `search.py` are the thin I/O.
"""

from scf.connectors.elasticsearch.connector import ElasticsearchConnector

__all__ = ["ElasticsearchConnector"]
