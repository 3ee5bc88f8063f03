"""MinIO / S3 connector (minio SDK in a bounded thread pool): buckets, objects, presigned URLs, ingest.

`connector.py` holds the class; `names.py`, `bodies.py`, `paging.py` and `requests.py` are the pure
parts (keys, payloads, page tokens, request shapes); `errors.py` is the error table; `objects.py`,
`reads.py`, `buckets.py` and `ingest.py` are the operations; `client.py` owns the SDK and its threads.
"""

from scf.connectors.minio.connector import MinIOStorageConnector

__all__ = ["MinIOStorageConnector"]
