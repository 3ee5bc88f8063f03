"""Qdrant connector (qdrant-client, async): collections and vector points on a server or embedded.

`connector.py` holds the class; `plans.py` parses requests and `operations.py` runs them; the pure parts
are `settings.py` (where to connect), `filters.py` (the JSON filter language), `ids.py` (point ids),
`paging.py` (scroll tokens) and `catalog.py` (vector spaces); `errors.py` is the error table.
"""

from scf.connectors.qdrant.connector import QdrantVectorConnector

__all__ = ["QdrantVectorConnector"]
