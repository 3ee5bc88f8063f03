"""Redis connector (redis-py, asyncio): strings, hashes, lists, sets, sorted sets, streams, publish,
sessions and SCAN, every key and channel under the connector's own prefix.

`connector.py` holds the class; the operations live in `strings.py`, `hashes.py`, `lists.py`,
`sets.py`, `streams.py` and `sessions.py`; the pure parts are `keys.py` (prefix isolation), `codec.py`
(value encoding), `bounds.py` (limits, page tokens) and `requests.py`; `errors.py` is the error table.
"""

from scf.connectors.redis.connector import RedisConnector

__all__ = ["RedisConnector"]
