"""`scf broker-users`: the fleet's RabbitMQ users and their permissions, set through the management API.

Three kinds of login, each with the least the code it runs needs (docs/broker-users.md explains every
regex): the **fleet** (dispatchers, workers) owns every `scf*` name; a **client** (`FleetClient`, the CLI)
publishes requests to `scf` and `scf.ops`, listens on its own server-named queues and binds one of them
to `scf.events`, and nothing more; the **gateway** is a client the fleet believes about its HTTP callers
(`SCF_TRUSTED_FORWARDERS`). Nobody gets the `impersonator` tag: RabbitMQ then refuses any message whose
`user_id` is not the sender's login, and the fleet takes that `user_id` as who sent a request.

Passwords are generated (`secrets.token_urlsafe`) unless given, printed once on stdout and never logged.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

import click
import httpx

from scf.fleet import broker_endpoints
from scf.fleet.settings import Settings
from scf.schemas.errors import ConfigurationError, ConnectorError, ErrorCode, SecurityError, TransientError

DEFAULT_API_URL = "http://127.0.0.1:15672"
#: Login names this command creates: plain and safe in a URL, a log line and `SCF_TRUSTED_FORWARDERS`.
USER_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}"
#: Tags an existing user must not carry to be managed here (they are not ours to strip).
REFUSED_TAGS = frozenset({"impersonator", "administrator"})
PASSWORD_BYTES = 32


@dataclass(frozen=True)
class Permissions:
    """RabbitMQ's three regexes (matched unanchored, hence `^...$`) over exchange and queue names."""

    configure: str
    write: str
    read: str


@dataclass(frozen=True)
class TopicPermissions:
    """Routing keys on one topic exchange: `write` for publishing, `read` for binding keys."""

    exchange: str
    write: str
    read: str


#: The names of "server-named" queues: the broker's own (`amq.gen-...`) and aio-pika's, which names an
#: unnamed queue itself on a robust connection (`amq_` + uuid4 hex) so it can declare it again after a
#: reconnect. Every such queue of the fleet and its clients is exclusive: only its connection may use it.
SERVER_NAMED = r"amq\.gen-.+|amq_[0-9a-f]{32}"
#: Dispatchers and workers declare the whole topology, consume `scf.requests`, `scf.ops.*`, `scf.dead`,
#: publish to every `scf*` exchange and reply through the default exchange (`amq.default`).
FLEET = Permissions(
    configure=rf"^(scf|scf\..+|{SERVER_NAMED})$",
    write=rf"^(scf|scf\..+|{SERVER_NAMED}|amq\.default)$",
    read=rf"^(scf|scf\..+|{SERVER_NAMED})$",
)
#: A client declares and consumes only server-named queues (its reply queue and its registry watch),
#: binds one to `scf.events` (read on the exchange, write on its queue) and publishes to `scf` (the
#: dispatcher) and `scf.ops` (the fast path). It cannot consume, declare or delete any fleet queue, bind
#: to `scf`/`scf.ops` (a copy of others' requests), or publish events or replies.
CLIENT = Permissions(
    configure=rf"^({SERVER_NAMED})$",
    write=rf"^(scf|scf\.ops|{SERVER_NAMED})$",
    read=rf"^(scf\.events|{SERVER_NAMED})$",
)
#: ... and on `scf.events` it may bind `connector.*` and `health.*` keys only (not `#`, not others'
#: `operation.cancel.<id>`), and publish nothing.
CLIENT_EVENTS = TopicPermissions(exchange="scf.events", write=r"^$", read=r"^(connector|health)\..+$")


class Role(StrEnum):
    FLEET = "fleet"
    GATEWAY = "gateway"
    CLIENT = "client"


GRANTS: dict[Role, tuple[Permissions, TopicPermissions | None]] = {
    Role.FLEET: (FLEET, None),
    Role.GATEWAY: (CLIENT, CLIENT_EVENTS),
    Role.CLIENT: (CLIENT, CLIENT_EVENTS),
}


@dataclass(frozen=True)
class UserSpec:
    name: str
    role: Role
    password: str | None = None  # None: generate one for a new user (or with `rotate`), else keep


@dataclass(frozen=True)
class Provisioned:
    name: str
    role: Role
    password: str | None  # the password set now; None: an existing user's password was kept
    created: bool

    def __repr__(self) -> str:  # never shows the password
        return f"Provisioned(name={self.name!r}, role={self.role.value}, created={self.created})"


def check_user_name(name: str) -> str:
    if not re.fullmatch(USER_NAME_PATTERN, name[:65]) or len(name) > 64:
        raise ConfigurationError(
            f"user names are letters, digits and _.@- (at most 64, starting alphanumeric): {name[:40]!r}",
            code=ErrorCode.INVALID_CONFIG,
        )
    return name


class ManagementApi:
    """The few calls of RabbitMQ's management HTTP API this command makes (an administrator's login)."""

    def __init__(self, base_url: str, user: str, password: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                "the management API URL must be http(s)://host:port", code=ErrorCode.INVALID_CONFIG
            )
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api",
            auth=(user, password),
            timeout=timeout,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise TransientError(
                "the RabbitMQ management API is not reachable (rabbitmq-plugins enable rabbitmq_management)",
                code=ErrorCode.CONNECTION_FAILED,
                detail=type(exc).__name__,
            ) from None
        if response.status_code in (401, 403):
            raise SecurityError(
                "the management API refused the administrator login", code=ErrorCode.AUTHENTICATION_FAILED
            )
        if response.status_code >= 400 and response.status_code != 404:
            raise ConfigurationError(
                f"the management API answered {response.status_code} to {method} {path.split('/')[1]}",
                code=ErrorCode.INVALID_CONFIG,
                detail=response.text[:300],  # the API's reason; request bodies (passwords) are never echoed
            )
        return response

    async def ensure_vhost(self, vhost: str) -> None:
        await self._call("PUT", f"/vhosts/{_seg(vhost)}", {})

    async def has_vhost(self, vhost: str) -> bool:
        return (await self._call("GET", f"/vhosts/{_seg(vhost)}")).status_code == 200

    async def user(self, name: str) -> dict[str, Any] | None:
        response = await self._call("GET", f"/users/{_seg(name)}")
        return None if response.status_code == 404 else dict(response.json())

    async def put_user(self, name: str, body: dict[str, Any]) -> None:
        await self._call("PUT", f"/users/{_seg(name)}", body)

    async def delete_user(self, name: str) -> bool:
        return (await self._call("DELETE", f"/users/{_seg(name)}")).status_code != 404

    async def set_permissions(self, vhost: str, name: str, grant: Permissions) -> None:
        body = {"configure": grant.configure, "write": grant.write, "read": grant.read}
        await self._call("PUT", f"/permissions/{_seg(vhost)}/{_seg(name)}", body)

    async def permissions(self, vhost: str, name: str) -> Permissions | None:
        response = await self._call("GET", f"/permissions/{_seg(vhost)}/{_seg(name)}")
        if response.status_code == 404:
            return None
        body = response.json()
        return Permissions(body["configure"], body["write"], body["read"])

    async def set_topic_permissions(self, vhost: str, name: str, grant: TopicPermissions | None) -> None:
        path = f"/topic-permissions/{_seg(vhost)}/{_seg(name)}"
        await self._call("DELETE", path)  # only ours remain (404 when there were none)
        if grant is not None:
            await self._call(
                "PUT", path, {"exchange": grant.exchange, "write": grant.write, "read": grant.read}
            )


def _seg(value: str) -> str:
    return quote(value, safe="")


def _tags(user: dict[str, Any]) -> list[str]:
    tags = user.get("tags") or []
    return [t.strip() for t in (tags.split(",") if isinstance(tags, str) else tags) if str(t).strip()]


async def provision_user(
    api: ManagementApi, vhost: str, spec: UserSpec, *, rotate: bool = False
) -> Provisioned:
    """Create or update one user with its role's permissions in `vhost` (and no other change)."""
    name = check_user_name(spec.name)
    existing = await api.user(name)
    password = spec.password
    if existing is None:
        password = password or secrets.token_urlsafe(PASSWORD_BYTES)
        await api.put_user(name, {"password": password, "tags": ""})
    else:
        tags = _tags(existing)
        refused = sorted(REFUSED_TAGS.intersection(tags))
        if refused:
            raise ConfigurationError(
                f"user {name!r} has the tag(s) {refused}; remove them or choose another user name",
                code=ErrorCode.INVALID_CONFIG,
            )
        if password is None and rotate:
            password = secrets.token_urlsafe(PASSWORD_BYTES)
        if password is not None:
            await api.put_user(name, {"password": password, "tags": ",".join(tags)})
    grant, topics = GRANTS[spec.role]
    await api.set_permissions(vhost, name, grant)
    await api.set_topic_permissions(vhost, name, topics)
    return Provisioned(name, spec.role, password, created=existing is None)


async def provision(
    api: ManagementApi,
    vhost: str,
    users: Sequence[UserSpec],
    *,
    create_vhost: bool = False,
    rotate: bool = False,
) -> list[Provisioned]:
    """Every user of `users` in `vhost`; refuses a missing vhost unless `create_vhost`."""
    for spec in users:
        check_user_name(spec.name)
    if create_vhost:
        await api.ensure_vhost(vhost)
    elif not await api.has_vhost(vhost):
        raise ConfigurationError(f"no vhost {vhost!r} (pass --create-vhost)", code=ErrorCode.INVALID_CONFIG)
    return [await provision_user(api, vhost, spec, rotate=rotate) for spec in users]


def amqp_url(name: str, password: str, host: str, vhost: str) -> str:
    return f"amqp://{quote(name, safe='')}:{quote(password, safe='')}@{host}/{quote(vhost, safe='')}"


def render(done: Sequence[Provisioned], vhost: str, amqp_host: str) -> str:
    """What the operator keeps: one line per user (its SCF_AMQP_URL when its password was set now)."""
    lines = [f"# RabbitMQ users in vhost {vhost!r}; passwords are shown this once: store them now"]
    for item in done:
        if item.password is None:
            lines.append(f"{item.role.value:<8} {item.name}  (existing password kept)")
        else:
            url = amqp_url(item.name, item.password, amqp_host, vhost)
            lines.append(f"{item.role.value:<8} {item.name}  password={item.password}  SCF_AMQP_URL={url}")
    forwarders = [item.name for item in done if item.role is Role.GATEWAY]
    if forwarders:
        lines.append(f"SCF_TRUSTED_FORWARDERS={','.join(forwarders)}")
    return "\n".join(lines)


def _default_target(amqp: str) -> tuple[str, str]:
    """(vhost, host:port) of an AMQP URL, as aio-pika reads it (`/` alone is the default vhost `/`)."""
    parts = urlsplit(broker_endpoints.first(amqp))
    vhost = broker_endpoints.vhost_of(amqp)
    return vhost, f"{parts.hostname or '127.0.0.1'}:{parts.port or 5672}"


def _specs(
    fleet: str, fleet_password: str | None, gateway: str, gateway_password: str | None, clients: Sequence[str]
) -> list[UserSpec]:
    specs = [UserSpec(fleet, Role.FLEET, fleet_password)] if fleet else []
    if gateway:
        specs.append(UserSpec(gateway, Role.GATEWAY, gateway_password))
    specs.extend(UserSpec(name, Role.CLIENT) for name in clients)
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise click.BadParameter("each user has one role: a name appears twice")
    return specs


async def _run(
    api: ManagementApi, vhost: str, specs: list[UserSpec], delete: Sequence[str], **flags: bool
) -> Any:
    try:
        if delete:
            return [(check_user_name(name), await api.delete_user(name)) for name in delete]
        return await provision(api, vhost, specs, **flags)
    finally:
        await api.close()


@click.command("broker-users")
@click.option("--api-url", envvar="SCF_RABBITMQ_API_URL", default=DEFAULT_API_URL, show_default=True)
@click.option("--admin-user", envvar="SCF_RABBITMQ_ADMIN_USER", default="guest", show_default=True)
@click.option("--admin-password", envvar="SCF_RABBITMQ_ADMIN_PASSWORD", prompt=True, hide_input=True)
@click.option("--vhost", default=None, help="Default: the vhost of SCF_AMQP_URL.")
@click.option("--create-vhost", is_flag=True, help="Create the vhost when it does not exist.")
@click.option("--fleet-user", default="scf-fleet", show_default=True, help="'' skips the fleet user.")
@click.option(
    "--fleet-password", envvar="SCF_BROKER_FLEET_PASSWORD", default=None, help="Default: generated."
)
@click.option("--gateway-user", default="scf-gateway", show_default=True, help="'' skips the gateway user.")
@click.option("--gateway-password", envvar="SCF_BROKER_GATEWAY_PASSWORD", default=None)
@click.option("--client", "clients", multiple=True, help="A client user (repeat); its password is generated.")
@click.option("--rotate", is_flag=True, help="New generated passwords for existing users too.")
@click.option("--delete", multiple=True, help="Delete these users instead (repeat).")
def broker_users(
    api_url: str,
    admin_user: str,
    admin_password: str,
    vhost: str | None,
    create_vhost: bool,
    fleet_user: str,
    fleet_password: str | None,
    gateway_user: str,
    gateway_password: str | None,
    clients: tuple[str, ...],
    rotate: bool,
    delete: tuple[str, ...],
) -> None:
    """Create the fleet's RabbitMQ users and permissions (docs/broker-users.md); print passwords once.

    Needs the management plugin (rabbitmq-plugins enable rabbitmq_management). Give passwords through
    the environment (SCF_BROKER_FLEET_PASSWORD, ...), not the command line, or let them be generated.
    """
    default_vhost, amqp_host = _default_target(Settings().amqp_url)
    specs = _specs(fleet_user, fleet_password, gateway_user, gateway_password, clients)
    api = ManagementApi(api_url, admin_user, admin_password)
    target = vhost or default_vhost
    try:
        done = asyncio.run(_run(api, target, specs, delete, create_vhost=create_vhost, rotate=rotate))
    except ConnectorError as exc:
        click.echo(f"error [{exc.category.value}/{exc.code}]: {exc.message}", err=True)
        sys.exit(1)
    if delete:
        for name, existed in done:
            click.echo(f"{name}: {'deleted' if existed else 'no such user'}")
        return
    click.echo(render(done, target, amqp_host))
