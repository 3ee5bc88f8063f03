"""The one connector contract every service type implements, and the error table that classifies drivers.

Public methods (`open`, `check`, `execute`, `close`) wrap the `_private` ones a subclass writes, and
translate every driver exception through the subclass's error table, so no connector can skip
classification. Connectors know nothing about AMQP or the fleet's Redis.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, overload

import structlog
from pydantic import BaseModel, ValidationError

from scf.connectors import egress
from scf.connectors.endpoint_names import name_endpoint
from scf.connectors.operation_table import Operation
from scf.connectors.sources import DEADLINE, Bindings, time_left
from scf.schemas.configs import parse_type_config
from scf.schemas.connection import ServiceConnection, describe_validation_error
from scf.schemas.errors import (
    ConfigurationError,
    ConnectorError,
    ErrorCategory,
    ErrorCode,
    PermanentError,
    TransientError,
    error_class,
)
from scf.schemas.operation import (
    UNPARSED_OPERATION_ID,
    ConnectionTestResult,
    OperationOutcome,
    OperationRequest,
    OperationResult,
    TestVerdict,
    prepare_request,
)

log = structlog.get_logger(__name__)

ConfigT = TypeVar("ConfigT", bound=BaseModel)


@dataclass(frozen=True)
class ErrorRule:
    """One row of an error table: driver exception type -> category, code and user-safe message.

    A driver that raises one generic type for several cases is told apart by `text` (the row matches
    only when the exception's text holds one of these fragments) or by `when` (a predicate on the
    exception); a row with neither matches on the type alone.
    """

    exception: type[BaseException] | tuple[type[BaseException], ...]
    category: ErrorCategory
    code: ErrorCode
    message: str
    text: tuple[str, ...] = ()
    when: Callable[[BaseException], bool] | None = None

    def matches(self, exc: BaseException) -> bool:
        if not isinstance(exc, self.exception):
            return False
        if self.text and not any(fragment in str(exc) for fragment in self.text):
            return False
        return self.when is None or self.when(exc)


#: Short names for error tables (`ErrorRule(SomeError, P, ErrorCode.INVALID_DATA, "...")`).
T, R, P, C, S = (
    ErrorCategory.TRANSIENT,
    ErrorCategory.RESOURCE,
    ErrorCategory.PERMANENT,
    ErrorCategory.CONFIGURATION,
    ErrorCategory.SECURITY,
)


#: Rows every connector gets after its own: network trouble is transient, a value the client library
#: refuses is the request's fault, and anything else unknown is permanent INTERNAL (`classify`): an
#: exception nobody listed is no proof that the service is down, so it never counts toward a breaker.
BASE_ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(TimeoutError, ErrorCategory.TRANSIENT, ErrorCode.TIMEOUT, "the service did not answer in time"),
    ErrorRule(
        ConnectionError, ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED, "cannot reach the service"
    ),
    ErrorRule(OSError, ErrorCategory.TRANSIENT, ErrorCode.CONNECTION_FAILED, "cannot reach the service"),
    # a client library refusing a value before any I/O (a lone surrogate, a NUL, a number too large)
    # says nothing about the service: the request is at fault, retrying or counting it would be wrong
    ErrorRule(
        UnicodeError,
        ErrorCategory.PERMANENT,
        ErrorCode.INVALID_DATA,
        "a value of the request cannot be encoded for the service (invalid text)",
    ),
    ErrorRule(
        ValueError, ErrorCategory.PERMANENT, ErrorCode.INVALID_DATA, "the client library refused a value"
    ),
    ErrorRule(
        OverflowError, ErrorCategory.PERMANENT, ErrorCode.INVALID_DATA, "a number of the request is too large"
    ),
)


def classify(exc: BaseException, rules: tuple[ErrorRule, ...]) -> ConnectorError:
    """Translate any exception into a typed error; the first matching row wins, unknown is INTERNAL."""
    if isinstance(exc, ConnectorError):
        return exc
    for rule in (*rules, *BASE_ERROR_RULES):
        if rule.matches(exc):
            return error_class(rule.category)(rule.message, code=rule.code, detail=_detail(exc))
    return PermanentError("internal connector error", code=ErrorCode.INTERNAL, detail=_detail(exc))


def _detail(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"[:2000]


@dataclass(frozen=True)
class PoolStats:
    size: int = 0
    in_use: int = 0
    opened_total: int = 0


class ServiceConnector(ABC):
    """Abstract base of every connector (the spec's `ServiceConnector`).

    Subclasses set `service_type`, `operation_table` (scf/connectors/operation_table.py) and
    `error_rules`, and write `_open`, `_check` and `_close`; `execute` parses each request against its
    row and calls the row's handler. Every public method raises only `ConnectorError` subclasses.
    """

    service_type: ClassVar[str]
    #: every operation: name -> models, handler and traits (the one place a connector declares them)
    operation_table: ClassVar[Mapping[str, Operation[Any]]] = {}
    #: the table's names (derived)
    operations: ClassVar[frozenset[str]] = frozenset()
    #: operations that change nothing: they may go to a read-only failover host (a replica) (derived)
    read_operations: ClassVar[frozenset[str]] = frozenset()
    #: keyed writes are recorded in the service itself, in the effect's own transaction (PostgreSQL)
    durable_idempotency: ClassVar[bool] = False
    error_rules: ClassVar[tuple[ErrorRule, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "operation_table" in cls.__dict__:
            cls.operations = frozenset(cls.operation_table)
            cls.read_operations = frozenset(n for n, op in cls.operation_table.items() if op.traits.reads)

    def __init__(self, connection: ServiceConnection) -> None:
        if connection.service_type != self.service_type:
            raise ConfigurationError(
                f"{type(self).__name__} serves {self.service_type}, not {connection.service_type}"
            )
        self.connection = connection
        self.type_config: BaseModel | None = self._parse_type_config(connection)
        self._opened = False
        self._open_lock = asyncio.Lock()
        self.bindings = Bindings()
        #: what the egress check approved at the last open (empty without a policy): for drivers to pin
        self.egress_pinned: list[egress.Pinned] = []

    @staticmethod
    def _parse_type_config(connection: ServiceConnection) -> BaseModel | None:
        try:
            return parse_type_config(connection.service_type, connection.custom_config)
        except ValidationError as exc:
            raise ConfigurationError("invalid custom_config: " + describe_validation_error(exc)) from None

    def config_of(self, model: type[ConfigT]) -> ConfigT:
        """This connector's `custom_config`, parsed as `model` (its type's config model)."""
        if not isinstance(self.type_config, model):  # pragma: no cover - the registry guarantees it
            raise ConfigurationError(f"{type(self).__name__} needs a {model.__name__} custom_config")
        return self.type_config

    @property
    def service_name(self) -> str:
        return self.connection.service_name

    @property
    def is_open(self) -> bool:
        return self._opened

    def translate(self, exc: BaseException) -> ConnectorError:
        error = classify(exc, self.error_rules)
        if error is not exc:
            name_endpoint(error, self.connection, self.type_config)
        return error

    @overload
    def time_left(self, limit: float) -> float: ...

    @overload
    def time_left(self, limit: float | None = None) -> float | None: ...

    def time_left(self, limit: float | None = None) -> float | None:
        """Seconds the running operation (or connection test) has left, never more than `limit`.

        Every I/O call a connector makes takes this as its timeout, so no call outlives its request.
        """
        return time_left(limit)

    # --- the contract -------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect (create the native pool). Raises transient/configuration/security errors."""
        if self._opened:
            return
        async with self._open_lock:
            if self._opened:
                return
            try:
                await self.egress_check()
                await self._open()
            except Exception as exc:
                await self._close_quietly()
                raise self.translate(exc) from exc
            except asyncio.CancelledError:  # a deadline cut the connect short: leave nothing half open
                await self._close_quietly()
                raise
            self._opened = True

    async def egress_check(self) -> None:
        """The hook every open passes: this connector's endpoints against the process's egress policy.

        The worker installs the deployment's policy (`scf.connectors.egress.install`); without one (unit
        tests, embedded use) nothing is checked. Raises `security` EGRESS_DENIED, or `transient` when a
        name does not resolve.
        """
        policy = egress.installed()
        if policy is None:
            return
        endpoints = egress.endpoints_of(self.service_type, self.type_config, self.connection)
        self.egress_pinned = await policy.check(endpoints)

    async def check(self) -> ConnectionTestResult:
        """Cheap connectivity test. Never raises: a failure is reported in the result.

        The whole test (connect included) gets `connection_timeout`, and never more than the time its
        request has left: every I/O call inside reads that budget through `time_left`.
        """
        started = time.perf_counter()
        verdicts: dict[str, TestVerdict] = {
            "connection_test": "skipped",
            "authentication_test": "skipped",
            "permissions_test": "skipped",
        }
        budget = time_left(self.connection.connection_timeout)
        token = DEADLINE.set(time.time() + budget)
        try:
            async with asyncio.timeout(budget) as bound:
                await self.open()
                verdicts.update(await self._check())
        except Exception as exc:
            error = self.translate(exc)
            if bound.expired():
                error = TransientError(
                    f"the connection test did not finish within {budget:.3g} s (connection_timeout, or "
                    "the time its request had left)",
                    code=ErrorCode.TIMEOUT,
                )
            verdicts.update(_failed_verdicts(error))
            log.info(
                "connector_check_failed", service_name=self.service_name, code=error.code, detail=error.detail
            )
            return ConnectionTestResult(
                service_name=self.service_name,
                status="failed",
                response_time=round(time.perf_counter() - started, 6),
                test_results=verdicts,
                error=error.to_info(),
            )
        finally:
            DEADLINE.reset(token)
        status = "success" if all(v != "failed" for v in verdicts.values()) else "failed"
        return ConnectionTestResult(
            service_name=self.service_name,
            status=status,
            response_time=round(time.perf_counter() - started, 6),
            test_results=verdicts,
        )

    async def execute(self, request: OperationRequest) -> OperationOutcome:
        """Run one operation. Raises `ConnectorError` subclasses only."""
        if request.operation not in self.operations:
            raise PermanentError(
                f"operation {request.operation!r} is not supported by {self.service_type}; "
                f"supported: {', '.join(sorted(self.operations))}",
                code=ErrorCode.UNKNOWN_OPERATION,
            )
        await self.open()
        try:
            return await self._execute(request)
        except Exception as exc:
            raise self.translate(exc) from exc

    async def _execute(self, request: OperationRequest) -> OperationOutcome:
        """Parse `data` and `parameters` against the operation's row, then run its handler."""
        operation = self.operation_table[request.operation]
        return await operation.handler(self, operation.parse(request, self.service_type))

    async def close(self) -> None:
        """Release every resource. Idempotent; never raises."""
        await self._close_quietly()
        self._opened = False

    def pool_stats(self) -> PoolStats:
        return PoolStats()

    async def discard(self) -> None:
        """The connector was deleted from the registry: close and drop what it keeps on this host.

        Called by a worker that has it loaded when it hears `connector.deleted` (so a new connector of
        the same name starts empty). Default: close only. Never for an update; must not touch a remote
        service's data.
        """
        await self.close()

    async def _close_quietly(self) -> None:
        try:
            await self._close()
        except Exception as exc:  # close must never raise: log and move on
            log.warning("connector_close_failed", service_name=self.service_name, detail=_detail(exc))

    # --- the spec's convenience API ---------------------------------------------------------------

    async def test_connection(self) -> ConnectionTestResult:
        return await self.check()

    async def execute_operation(self, request: OperationRequest | Mapping[str, Any]) -> OperationResult:
        """Execute and wrap in the spec's result shape; a failure is a `failed` result, never an exception."""
        started = time.perf_counter()
        operation_id = UNPARSED_OPERATION_ID
        try:
            parsed = prepare_request(request, self.service_name)
            operation_id = parsed.operation_id or operation_id
            outcome = await self.execute(parsed)
        except ConnectorError as exc:
            return OperationResult.failed(operation_id, exc, time.perf_counter() - started)
        return OperationResult.succeeded(operation_id, outcome, time.perf_counter() - started)

    # --- what a subclass writes ---------------------------------------------------------------------

    @abstractmethod
    async def _open(self) -> None: ...

    @abstractmethod
    async def _check(self) -> dict[str, TestVerdict]:
        """Return the verdicts it could establish; raise a driver or typed error on failure."""

    @abstractmethod
    async def _close(self) -> None: ...


def _failed_verdicts(error: ConnectorError) -> dict[str, TestVerdict]:
    if error.category is ErrorCategory.SECURITY:
        if error.code == ErrorCode.PERMISSION_DENIED:
            return {
                "connection_test": "passed",
                "authentication_test": "passed",
                "permissions_test": "failed",
            }
        return {"connection_test": "passed", "authentication_test": "failed", "permissions_test": "skipped"}
    return {"connection_test": "failed", "authentication_test": "skipped", "permissions_test": "skipped"}


def require(condition: bool, message: str, code: ErrorCode = ErrorCode.INVALID_DATA) -> None:
    """Raise a `permanent` error naming the bad input when `condition` does not hold."""
    if not condition:
        raise PermanentError(message, code=code)


__all__ = [
    "BASE_ERROR_RULES",
    "C",
    "ErrorRule",
    "P",
    "PoolStats",
    "R",
    "S",
    "ServiceConnector",
    "T",
    "TransientError",
    "classify",
    "require",
]
