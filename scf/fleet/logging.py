"""structlog set-up shared by every process: JSON lines on stderr, secrets redacted before rendering.

The fleet's own loggers are structlog's; every library's (aio-pika, aiormq, uvicorn, asyncpg, httpx,
elasticsearch, ...) go through the standard library, whose root handler renders them with the same
processors, so stderr is one JSON object per line whoever wrote it. Libraries log at WARNING and
above unless `SCF_LOG_LEVEL=debug`. Fields bound with `structlog.contextvars` (the worker binds
`operation_id`, `service_name`, `service_type`, `principal` and `trace_id` for each operation) appear on
every line written while the operation runs, library lines included.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from scf.schemas.secrets import redact

#: Loggers of libraries that say more than an operator needs at INFO.
CHATTY = ("aio_pika", "aiormq", "asyncio", "httpx", "httpcore", "uvicorn", "elastic_transport", "urllib3")


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask credential-looking keys and passwords inside URLs."""
    redacted = redact(event_dict)  # a new dict: the event's own is left as it was
    assert isinstance(redacted, dict)
    return redacted


def _shared() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]


def configure_logging(level: str = "info", *, json_output: bool = True) -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: Any = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    shared = _shared()
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.WARNING))
    for name in CHATTY:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)
    for name, existing in list(logging.root.manager.loggerDict.items()):
        if isinstance(existing, logging.Logger) and existing.handlers and name.split(".")[0] in CHATTY:
            existing.handlers.clear()  # e.g. uvicorn's own handlers: plain text beside our JSON
            existing.propagate = True
