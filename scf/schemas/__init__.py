"""The wire contract: every model and name two fleet processes must agree on. No I/O here."""

from scf.schemas.connection import ServiceConnection, ServiceType
from scf.schemas.control import (
    CheckEnvelope,
    ConnectorCreated,
    ConnectorInfo,
    ConnectorMetrics,
    ConnectorRef,
    FailedReply,
    MessageType,
)
from scf.schemas.errors import (
    ConfigurationError,
    ConnectorError,
    ErrorCategory,
    ErrorCode,
    ErrorInfo,
    PermanentError,
    ResourceError,
    SecurityError,
    TransientError,
)
from scf.schemas.operation import (
    ConnectionTestResult,
    OperationEnvelope,
    OperationOutcome,
    OperationRequest,
    OperationResult,
)

__all__ = [
    "CheckEnvelope",
    "ConfigurationError",
    "ConnectionTestResult",
    "ConnectorCreated",
    "ConnectorError",
    "ConnectorInfo",
    "ConnectorMetrics",
    "ConnectorRef",
    "ErrorCategory",
    "ErrorCode",
    "ErrorInfo",
    "FailedReply",
    "MessageType",
    "OperationEnvelope",
    "OperationOutcome",
    "OperationRequest",
    "OperationResult",
    "PermanentError",
    "ResourceError",
    "SecurityError",
    "ServiceConnection",
    "ServiceType",
    "TransientError",
]
