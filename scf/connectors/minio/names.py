"""Object names: the one place a caller's key becomes `prefix + key`, after the key passed `check_key`.

Every operation reaches an object only through `ObjectNames.full`, so no request can name an object
outside the connector's prefix, and every reply shows keys relative to it.
"""

from __future__ import annotations

from scf.schemas.configs.minio import MAX_KEY_BYTES, check_key
from scf.schemas.errors import ErrorCode, PermanentError


class ObjectNames:
    """Keys relative to `prefix` (the configured folder, '' or ending in '/') <-> full object names."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def full(self, key: object, what: str = "parameters.key") -> str:
        name = self.prefix + check_key(key, what)
        if len(name.encode("utf-8")) > MAX_KEY_BYTES:
            raise PermanentError(
                f"{what} with the connector's prefix is longer than {MAX_KEY_BYTES} bytes",
                code=ErrorCode.INVALID_IDENTIFIER,
            )
        return name

    def listing(self, prefix: object, what: str = "parameters.prefix") -> str:
        """The full prefix of a listing; '' lists the connector's whole folder."""
        relative = check_key(prefix, what, allow_empty=True)
        return self.prefix + relative

    def relative(self, name: str) -> str:
        """The caller's key for a full object name that the store returned from inside the prefix."""
        if not name.startswith(self.prefix):  # the store answered outside the asked prefix: never show it
            raise PermanentError("the store returned an object outside the connector's prefix")
        return name[len(self.prefix) :]
