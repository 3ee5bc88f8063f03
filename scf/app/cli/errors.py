"""What the person at the terminal reads when a command fails: one line, and the next step to take.

`explain` is a table from what went wrong (an exception from the broker client, the fleet's typed
error, a missing file) to a `CliError`: a message, a hint and an exit code. Tracebacks are for
`--debug` (or SCF_DEBUG=1) only.
"""

from __future__ import annotations

import errno

import click

from scf.fleet.broker_endpoints import login_of, vhost_of
from scf.fleet.broker_endpoints import masked as masked_url
from scf.schemas.errors import ConnectorError, ErrorCode

#: Exit codes (docs/cli.md). 2 is click's own for usage errors.
EXIT_FAILED = 1  # the fleet answered: the operation or call failed (its typed error is shown)
EXIT_USAGE = 2  # the command line or an input file is wrong
EXIT_NO_BROKER = 3  # the broker cannot be reached, or refused the login or vhost
EXIT_NO_FLEET = 4  # the broker answers but no fleet does
EXIT_INTERRUPTED = 130


class CliError(click.ClickException):
    """A failure shown as one line: `scf: <message>` (and `: <hint>` when there is a next step)."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.hint = hint
        # click reads `exit_code`, typed as a ClassVar there; each CliError carries its own
        object.__setattr__(self, "exit_code", exit_code)

    def format_message(self) -> str:
        return f"{self.message}: {self.hint}" if self.hint else self.message

    def show(self, file: object = None) -> None:
        click.echo(f"scf: {self.format_message()}", err=True)


START_FLEET = "start one with scf up"


def no_fleet(url: str, why: str = "") -> CliError:
    return CliError(f"no fleet answers on {masked_url(url)}{why}", hint=START_FLEET, exit_code=EXIT_NO_FLEET)


def explain(exc: BaseException, url: str) -> CliError:
    """The one line for `exc`, raised while talking to the fleet at `url`."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, ConnectorError):
        return _fleet_error(exc)
    name = type(exc).__name__
    shown = masked_url(url)
    text = str(exc).replace(url, shown)  # a library may quote the URL it was given, password and all
    if name == "ProbableAuthenticationError" or "ACCESS_REFUSED" in text:
        return CliError(
            f"the broker at {shown} refused user {login_of(url)!r} (wrong user or password)",
            hint="check SCF_AMQP_URL",
            exit_code=EXIT_NO_BROKER,
        )
    if "Connection.Close" in text or "NOT_ALLOWED" in text or ("vhost" in text and "not found" in text):
        return CliError(
            f"the broker at {shown} refused vhost {vhost_of(url)!r} for user {login_of(url)!r} "
            "(no such vhost, or no permission on it)",
            hint="check SCF_AMQP_URL, or create the vhost (rabbitmqctl add_vhost)",
            exit_code=EXIT_NO_BROKER,
        )
    if name == "ChannelNotFoundEntity" or "NOT_FOUND - no exchange" in text:
        return no_fleet(url, " (no fleet has run in this vhost)")
    reason = _network_reason(exc)
    if reason is not None:
        return CliError(
            f"cannot reach the broker at {shown}: {reason}",
            hint="is RabbitMQ running? (SCF_AMQP_URL names it)",
            exit_code=EXIT_NO_BROKER,
        )
    return CliError(f"{name}: {text or 'unexpected failure'}", hint="run again with --debug for details")


def _network_reason(exc: BaseException) -> str | None:
    """Why a connection attempt failed, if `exc` (or what it wraps) is a network failure."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        if isinstance(seen, TimeoutError):
            return "timed out"
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen.strerror or str(seen)
        text = str(seen)
        if "Connect call failed" in text or "[Errno 111]" in text:
            return "connection refused"
        if "Name or service not known" in text or "nodename nor servname" in text:
            return "unknown host"
        seen = seen.__cause__ or seen.__context__
    if type(exc).__name__ in {"AMQPConnectionError", "ConnectionClosed", "IncompatibleProtocolError"}:
        return str(exc) or type(exc).__name__
    return None


#: A next step for typed errors a newcomer meets most.
_HINTS: dict[str, str] = {
    ErrorCode.UNAUTHENTICATED: "the fleet's policy does not name this AMQP user (docs/access-control.md)",
    ErrorCode.FORBIDDEN: "ask an admin for the permission (scf keys / the policy file)",
    ErrorCode.CONNECTOR_NOT_FOUND: "scf connector list shows what exists",
    ErrorCode.RESULT_NOT_FOUND: "results are kept SCF_RESULT_TTL seconds, for their own caller only",
    ErrorCode.NO_WORKER: "start a worker for this type: scf worker --types <type>",
}


def _fleet_error(exc: ConnectorError) -> CliError:
    code = str(exc.code)
    if type(exc).__name__ == "RpcTimeoutError":
        return CliError(exc.message, hint="is the fleet overloaded or stopping? retry, or raise --timeout")
    return CliError(f"{code}: {exc.message}", hint=_HINTS.get(code), exit_code=EXIT_FAILED)
