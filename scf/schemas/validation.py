"""One way to validate a piece of a request against its model: a typed INVALID_REQUEST on failure."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from scf.schemas.connection import describe_validation_error
from scf.schemas.errors import ErrorCode, PermanentError

M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], body: Any, where: str = "request") -> M:
    """Validate `body` (a request, or its `data` or `parameters`) or raise `permanent` INVALID_REQUEST.

    The message names each bad field and never echoes an input value (which may be a secret).
    """
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise PermanentError(
            f"invalid {where}: {describe_validation_error(exc)}", code=ErrorCode.INVALID_REQUEST
        ) from None
