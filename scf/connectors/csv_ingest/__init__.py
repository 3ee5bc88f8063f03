"""The CSV ingestion connector (the spec's `CSVIngestionConnector`)."""

from scf.connectors.csv_ingest.connector import CSVIngestionConnector

__all__ = ["CSVIngestionConnector"]
