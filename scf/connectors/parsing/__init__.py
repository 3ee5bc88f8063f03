"""Parsers as pure functions, shared by every connector that reads files (CSV, PDF, MinIO `ingest`).

Each takes the file's bytes (or text), parsed options, a page token and limits, and returns an
`OperationOutcome`; none holds a connector. Callers fetch the bytes first (inline, object, URL).
"""
