"""Access control for a fleet on one machine (`scf up`, `scripts/up.sh`): secure by default, usable at once.

* No `SCF_POLICY_FILE`: `<SCF_DATA_DIR>/policy.yaml` is written once, granting everything to the
  fleet's own AMQP login only (the local operator's `scf` CLI logs in with it). Any other broker user
  is refused until the policy names it.
* A local admin API key for the gateway (principal `local-admin`, grant `*`) is created when none is
  live, and printed once with a ready-to-paste `curl`; only its hash is stored.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from scf.app.runner import open_state, progress
from scf.fleet.access_store import ApiKeyRequest, ApiKeyStore
from scf.fleet.broker_endpoints import login_of
from scf.fleet.settings import Settings
from scf.schemas.errors import ConnectorError

LOCAL_ADMIN = "local-admin"


def local_policy(settings: Settings) -> Settings:
    """The settings with a policy file: the given one, or this machine's (written once)."""
    if not settings.auth_enabled or settings.scf_policy_file is not None:
        return settings
    path = Path(settings.scf_data_dir) / "policy.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        login = login_of(settings.amqp_url)
        path.write_text(
            "# Written by `scf up` for this machine (docs/access-control.md). The fleet's own AMQP login\n"
            "# (which the local `scf` CLI uses) may do anything; name other broker users here.\n"
            "roles:\n"
            '  admin: ["*"]\n'
            "principals:\n"
            f"  {login}: {{roles: [admin], rate: 0}}\n"
        )
        progress(f"access control: wrote {path} (the fleet's login {login!r} may do anything)")
    os.environ["SCF_POLICY_FILE"] = str(path.resolve())  # for the processes `scf up` starts
    return settings.model_copy(update={"scf_policy_file": path.resolve()})


async def ensure_local_admin_key(settings: Settings) -> None:
    """Create the local admin key unless a live one exists; print it once."""
    if not settings.auth_enabled:
        return
    try:
        await _ensure(settings)
    except ConnectorError as exc:  # Redis away: the fleet says so itself; the key can be made later
        progress(f"access control: no local admin key made ({exc.code}); `scf keys create` makes one")


async def _ensure(settings: Settings) -> None:
    state = await open_state(settings)
    try:
        store = ApiKeyStore(state)
        now = time.time()
        live = [
            k
            for k in await store.list()
            if k.name == LOCAL_ADMIN and not k.revoked and (k.expires_at is None or k.expires_at > now)
        ]
        if live:
            progress(
                f"access control: the local admin key {live[0].key_id} exists (printed when it was made); "
                f"`scf keys create NAME --grant '*'` makes another"
            )
            return
        created = await store.create(ApiKeyRequest(name=LOCAL_ADMIN, grants=["*"]))
    finally:
        await state.close()
    port = settings.service_connector_factory_port
    progress("access control: a local admin API key was created. It is shown ONCE; keep it:")
    progress(f"  export SCF_API_KEY={created.key}")
    progress(f'  curl -s -H "X-API-Key: $SCF_API_KEY" localhost:{port}/connectors')
