"""The SSRF corpus: URLs reaching loopback, private or metadata addresses in every disguise are refused,
through the guard's `fetch` and through the connector, while a canary listener on loopback sees nothing.

Most variants aim at the canary's own port, so a variant that got through would show up as a connection.
Names resolve through a fake resolver (as they would in the real world), including a rebinding one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scf.connectors.api import ApiIngestionConnector
from scf.connectors.web.fetch import GuardPolicy, fetch
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCategory, SecurityError
from tests.support.http_servers import (
    CanaryListener,
    FakeDns,
    HttpServer,
    RunningApi,
    json_reply,
    running_api,
)

pytestmark = pytest.mark.integration

P = "{port}"
CORPUS: list[str] = [
    # loopback, plainly and in every numeric spelling
    f"http://127.0.0.1:{P}/",
    f"http://localhost:{P}/",
    f"HTTP://LOCALHOST:{P}/",
    f"http://localhost.:{P}/",
    f"https://127.0.0.1:{P}/",
    f"http://127.0.0.2:{P}/",
    f"http://2130706433:{P}/",
    f"http://0x7f000001:{P}/",
    f"http://0x7f.0x0.0x0.0x1:{P}/",
    f"http://0x7f.1:{P}/",
    f"http://0177.0.0.1:{P}/",
    f"http://017700000001:{P}/",
    f"http://127.1:{P}/",
    f"http://127.0.1:{P}/",
    f"http://127.000.000.001:{P}/",
    f"http://127.0.0.1.:{P}/",
    f"http://%31%32%37.0.0.1:{P}/",
    f"http://0:{P}/",
    f"http://0.0.0.0:{P}/",
    # IPv6 and IPv6 forms carrying IPv4
    f"http://[::1]:{P}/",
    f"http://[::]:{P}/",
    f"http://[0:0:0:0:0:0:0:1]:{P}/",
    f"http://[::ffff:127.0.0.1]:{P}/",
    f"http://[::ffff:7f00:1]:{P}/",
    f"http://[0:0:0:0:0:ffff:127.0.0.1]:{P}/",
    f"http://[::127.0.0.1]:{P}/",
    f"http://[2002:7f00:1::]:{P}/",
    f"http://[64:ff9b::7f00:1]:{P}/",
    f"http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{P}/",
    f"http://[fe80::1%25lo]:{P}/",
    # userinfo and parser-confusion tricks
    f"http://user@127.0.0.1:{P}/",
    f"http://user:pass@127.0.0.1:{P}/",
    f"http://api.example.com@127.0.0.1:{P}/",
    f"http://127.0.0.1:{P}\\@api.example.com/",
    f"http://api.example.com:80@127.0.0.1:{P}/",
    f"http://127.0.0.1:{P}/ @api.example.com/",
    # cloud metadata
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://100.100.100.200/latest/meta-data/",
    # private, shared, multicast, reserved
    f"http://10.0.0.1:{P}/",
    f"http://172.16.0.1:{P}/",
    f"http://192.168.1.1:{P}/",
    f"http://100.64.0.1:{P}/",
    f"http://224.0.0.1:{P}/",
    f"http://240.0.0.1:{P}/",
    f"http://255.255.255.255:{P}/",
    f"http://[fd12:3456::1]:{P}/",
    # names that resolve inward
    f"http://localtest.me:{P}/",
    f"http://127.0.0.1.nip.io:{P}/",
    f"http://internal.corp.example:{P}/",
    f"http://v6-loopback.example:{P}/",
    f"http://mapped-loopback.example:{P}/",
    f"http://half-public.example:{P}/",
    # other schemes
    "file:///etc/passwd",
    f"gopher://127.0.0.1:{P}/_SSRF",
    f"ftp://127.0.0.1:{P}/",
    f"dict://127.0.0.1:{P}/info",
    f"ws://127.0.0.1:{P}/",
]

#: How the names above resolve in the real world (or in a cloud VM).
REAL_WORLD_DNS: dict[str, list[str]] = {
    "localhost": ["127.0.0.1", "::1"],
    "localhost.": ["127.0.0.1", "::1"],
    "localtest.me": ["127.0.0.1"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "metadata.google.internal": ["169.254.169.254"],
    "internal.corp.example": ["10.0.0.5"],
    "v6-loopback.example": ["::1"],
    "mapped-loopback.example": ["::ffff:127.0.0.1"],
    "half-public.example": ["93.184.216.34", "127.0.0.1"],
    "api.example.com": ["93.184.216.34"],
}


@pytest.fixture(scope="module")
def canary() -> Iterator[CanaryListener]:
    listener = CanaryListener("127.0.0.1")
    yield listener
    listener.stop()


@pytest.fixture(scope="module")
def canary6(canary: CanaryListener) -> Iterator[CanaryListener | None]:
    """The same port on ::1, when this machine has IPv6 loopback."""
    try:
        listener = CanaryListener("::1", canary.port)
    except OSError:
        yield None
        return
    yield listener
    listener.stop()


def accepted(canary: CanaryListener, canary6: CanaryListener | None) -> int:
    return canary.accepted + (canary6.accepted if canary6 is not None else 0)


def test_the_corpus_has_at_least_forty_variants() -> None:
    assert len(CORPUS) >= 40
    assert len(set(CORPUS)) == len(CORPUS)


@pytest.mark.parametrize("template", CORPUS)
async def test_fetch_refuses(template: str, canary: CanaryListener, canary6: CanaryListener | None) -> None:
    url = template.replace(P, str(canary.port))

    with pytest.raises(SecurityError) as caught:
        await fetch(url, policy=GuardPolicy(resolver=FakeDns(REAL_WORLD_DNS)), timeout=2)

    assert caught.value.to_info().message == "access denied"
    assert "pass@" not in (caught.value.detail or "")
    assert accepted(canary, canary6) == 0


@pytest.mark.parametrize("template", CORPUS)
async def test_the_connector_refuses(
    template: str, canary: CanaryListener, canary6: CanaryListener | None
) -> None:
    url = template.replace(P, str(canary.port))
    connection = ServiceConnection.parse(
        {"service_type": "api", "service_name": "ssrf", "connection_timeout": 2}
    )
    connector = ApiIngestionConnector(connection, resolver=FakeDns(REAL_WORLD_DNS))
    try:
        result = await connector.execute_operation({"operation": "ingest", "data": {"api_endpoint": url}})
        opened = connector.pool_stats().opened_total
    finally:
        await connector.close()

    assert result.error is not None and result.error.category == "security", result.error
    assert opened == 0  # refused before any socket was opened
    assert accepted(canary, canary6) == 0


# --- redirects: the first hop is allowed (that exact host:port), the next one is not --------------

REDIRECT_TARGETS = [
    "http://127.0.0.1:{port}/",
    "http://localhost:{port}/",
    "http://[::1]:{port}/",
    "http://2130706433:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://169.254.169.254/latest/meta-data/",
    "http://user@127.0.0.1:{port}/",
    "gopher://127.0.0.1:{port}/",
]


@pytest.fixture(scope="module")
def redirector() -> Iterator[RunningApi]:
    yield from running_api()


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize("target", REDIRECT_TARGETS)
async def test_a_redirect_to_a_forbidden_host_is_refused(
    redirector: RunningApi, canary: CanaryListener, canary6: CanaryListener | None, target: str, status: int
) -> None:
    location = target.format(port=canary.port)
    policy = GuardPolicy.build([redirector.server.host_port], resolver=FakeDns(REAL_WORLD_DNS))
    redirector.server.route("/hop", lambda seen: json_reply({}, status, [("Location", location)]))
    before = len(redirector.server.seen("/hop"))

    with pytest.raises(SecurityError):
        await fetch(f"{redirector.url}/hop", policy=policy, timeout=2)

    assert len(redirector.server.seen("/hop")) == before + 1  # the allowed first hop was made
    assert accepted(canary, canary6) == 0


async def test_a_redirect_chain_is_checked_at_every_hop(
    redirector: RunningApi, canary: CanaryListener, canary6: CanaryListener | None
) -> None:
    policy = GuardPolicy.build([redirector.server.host_port], resolver=FakeDns(REAL_WORLD_DNS))
    final = f"http://localhost:{canary.port}/"
    redirector.server.route("/chain1", lambda seen: json_reply({}, 302, [("Location", "/chain2")]))
    redirector.server.route("/chain2", lambda seen: json_reply({}, 301, [("Location", final)]))

    with pytest.raises(SecurityError):
        await fetch(f"{redirector.url}/chain1", policy=policy, timeout=2)

    assert len(redirector.server.seen("/chain2")) == 1
    assert accepted(canary, canary6) == 0


# --- DNS rebinding: the resolver answers an approved address first, loopback afterwards ------------


async def test_the_connection_goes_to_the_checked_address_not_to_a_second_answer(
    canary: CanaryListener, canary6: CanaryListener | None
) -> None:
    """203.0.113.1 (TEST-NET-3, admitted here by an explicit network entry) does not answer; had the
    client resolved again, it would have reached the canary on 127.0.0.1 instead."""
    dns = FakeDns({"rebind.example": [["203.0.113.1"], ["127.0.0.1"]]})
    policy = GuardPolicy.build(["203.0.113.0/24"], resolver=dns)

    with pytest.raises(ConnectorError) as caught:
        await fetch(f"http://rebind.example:{canary.port}/", policy=policy, timeout=0.5)

    assert caught.value.category is ErrorCategory.TRANSIENT  # cannot connect / timed out: not loopback
    assert dns.asked == ["rebind.example"]  # resolved once, never again
    assert accepted(canary, canary6) == 0


@pytest.fixture
def alias_api(canary: CanaryListener) -> Iterator[HttpServer]:
    """An API on 127.0.0.2 at the canary's port number: only the pinned address reaches it."""
    try:
        server = HttpServer("127.0.0.2", canary.port).start()
    except OSError:
        pytest.skip("127.0.0.2 is not usable on this machine")
    server.route("/", lambda seen: json_reply({"reached": "127.0.0.2"}))
    yield server
    server.stop()


async def test_a_rebinding_answer_is_checked_before_it_is_ever_used(
    alias_api: HttpServer, canary: CanaryListener, canary6: CanaryListener | None
) -> None:
    dns = FakeDns({"rebind.example": [["127.0.0.2"], ["127.0.0.1"]]})
    policy = GuardPolicy.build(["127.0.0.2/32"], resolver=dns)
    url = f"http://rebind.example:{canary.port}/"

    first = await fetch(url, policy=policy, timeout=2)
    with pytest.raises(SecurityError):
        await fetch(url, policy=policy, timeout=2)  # the second answer is loopback: refused, not used

    assert first.json() == {"reached": "127.0.0.2"}
    assert alias_api.seen("/")[0].headers["host"] == f"rebind.example:{canary.port}"
    assert dns.asked == ["rebind.example", "rebind.example"]
    assert accepted(canary, canary6) == 0


async def test_the_system_resolver_is_used_by_default_and_refuses_localhost(
    canary: CanaryListener, canary6: CanaryListener | None
) -> None:
    with pytest.raises(SecurityError):
        await fetch(f"http://localhost:{canary.port}/", policy=GuardPolicy(), timeout=2)

    assert accepted(canary, canary6) == 0


async def test_proxy_settings_in_the_environment_are_ignored(
    redirector: RunningApi,
    canary: CanaryListener,
    canary6: CanaryListener | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = f"http://127.0.0.1:{canary.port}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    reply = await fetch(f"{redirector.url}/records", policy=GuardPolicy.build([redirector.server.host_port]))

    assert reply.status_code == 200
    assert accepted(canary, canary6) == 0
