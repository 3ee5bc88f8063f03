"""Encryption of connector credentials at rest (Fernet), with key rotation through MultiFernet.

`SCF_SECRET_KEY` holds one or more comma-separated Fernet keys, newest first. Without it a local
development key is created once under the data directory (mode 0600) so every process on one machine
agrees; a fleet spread over machines must set the variable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from scf.schemas.errors import ConfigurationError, ErrorCode

log = structlog.get_logger(__name__)


class SecretBox:
    """Seals a JSON document into an opaque token and opens it again."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigurationError("no encryption key configured", code=ErrorCode.INVALID_CONFIG)
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        except ValueError:
            raise ConfigurationError(
                "SCF_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes)",
                code=ErrorCode.INVALID_CONFIG,
            ) from None

    def seal(self, document: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(document, separators=(",", ":")).encode()).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            opened: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise ConfigurationError(
                "stored connector credentials cannot be decrypted with the configured SCF_SECRET_KEY",
                code=ErrorCode.SECRETS_UNREADABLE,
            ) from None
        return opened


def load_secret_box(secret_key: str | None, data_dir: Path) -> SecretBox:
    if secret_key:
        return SecretBox([k for k in secret_key.split(",") if k.strip()])
    key_file = data_dir / "secret.key"
    if not key_file.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key())
        log.warning(
            "secret_key_generated", path=str(key_file), hint="set SCF_SECRET_KEY for a multi-machine fleet"
        )
    return SecretBox([key_file.read_text().strip()])
