"""`scf docs` and `scf types`: what the fleet offers, read from the same models and operation tables it runs.

Neither needs a running fleet.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from scf.app.reference import operations_page, type_listing
from scf.app.runner import progress
from scf.fleet.settings import Settings


@click.command()
@click.option("--out", "out_dir", default="docs", show_default=True, type=click.Path(path_type=Path))
def docs(out_dir: Path) -> None:
    """Write the HTTP (OpenAPI) and AMQP (AsyncAPI) documents, both generated from the same models, and
    the table of every connector's operations (operations.md), generated from their operation tables."""
    from scf.connectors.registry import operation_catalog
    from scf.gateway.app import PUBLIC_BROKER_URL, create_app  # only this command needs FastAPI
    from scf.schemas.asyncapi import build_asyncapi

    out_dir.mkdir(parents=True, exist_ok=True)
    documents = {
        "openapi.json": create_app(Settings()).openapi(),
        # never the real broker or user; every type's declared operations on its scf.ops.<type> channel
        "asyncapi.json": build_asyncapi(server_url=PUBLIC_BROKER_URL, operations=operation_catalog()),
    }
    for name, document in documents.items():
        (out_dir / name).write_text(json.dumps(document, indent=2) + "\n")
        progress(f"wrote {out_dir / name}")
    (out_dir / "operations.md").write_text(operations_page())
    progress(f"wrote {out_dir / 'operations.md'}")


@click.command()
@click.argument("service_type", required=False)
def types(service_type: str | None) -> None:
    """List the connector types and each one's operations: traits, parameters and data fields."""
    try:
        lines = type_listing(service_type)
    except KeyError:
        raise click.BadParameter(f"no connector type {service_type!r}", param_hint="SERVICE_TYPE") from None
    click.echo("\n".join(lines))
