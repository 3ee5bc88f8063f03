"""Guarded HTTP: fetch a user-given URL only if it, and every redirect hop, is public (the SSRF guard).

Shared by the API connector and the files-by-URL of the ingestion connectors (`url_source.py`):
`policy.py` checks a URL and pins its addresses, `transport.py` connects only to them, `client.py`
follows redirects through the check, `bodies.py` reads capped bodies, `errors.py` types failures and
HTTP statuses, `redaction.py` masks secrets in what is shown, `fetch.py` is the one-call GET.
Nothing here imports a connector.
"""
