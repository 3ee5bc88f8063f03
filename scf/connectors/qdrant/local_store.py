"""Local mode's folders: every connector's store is `<SCF_DATA_DIR>/qdrant/<service_name>`, and stays there.

`confine` is asked before the embedded client opens a folder: the path is resolved (symlinks followed)
and must be exactly the folder it names under `<SCF_DATA_DIR>/qdrant`, so a symlink planted anywhere
below that root (or a name that climbs out) refuses the folder instead of being followed. `discard`
runs when the connector is deleted from the registry: the folder is renamed into
`<root>/.tombstones/` (one atomic rename, so a new connector of the same name starts empty at once) and
then removed. Service names start with a letter or digit, so no connector can be called `.tombstones`.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import structlog

from scf.schemas.errors import ErrorCode, SecurityError

log = structlog.get_logger(__name__)

TOMBSTONES = ".tombstones"
REFUSED = "the local Qdrant folder is not inside the connector's own folder"


def _refuse(reason: str) -> SecurityError:
    return SecurityError(REFUSED, code=ErrorCode.PERMISSION_DENIED, detail=reason[:300])


def confine(root: Path, path: Path) -> Path:
    """`path` (built under `root`) as it really is on disk; `security` PERMISSION_DENIED unless inside.

    Raises when `path` is not below `root`, names `root` itself, or resolves anywhere else than its own
    spelling below the resolved root (a symlink, `..`, a mount trick like `/proc/self/cwd`).
    """
    try:
        relative = path.relative_to(root)
    except ValueError:
        raise _refuse("outside the data directory") from None
    if not relative.parts or any(part in ("", ".", "..") for part in relative.parts):
        raise _refuse("not a sub-folder of the data directory")
    real_root = root.resolve()
    wanted = real_root.joinpath(*relative.parts)
    real = wanted.resolve()
    if real != wanted or not real.is_relative_to(real_root):
        raise _refuse("a symbolic link or relative step leads elsewhere")
    return real


def prepare(root: Path, path: Path) -> Path:
    """The confined folder, created (owner-only) if missing; what the embedded client is given."""
    real = confine(root, path)
    real.mkdir(mode=0o700, parents=True, exist_ok=True)
    return confine(root, path)  # again: nothing may have been swapped in while it was created


def discard(root: Path, folder: Path) -> bool:
    """Remove a deleted connector's folder (`root/<service_name>`); True when there was one.

    A symlink in its place is unlinked, never followed. Raises OSError only when the rename fails.
    """
    if folder.parent != root or folder.name in ("", ".", "..", TOMBSTONES):
        raise _refuse("not a connector folder")
    if folder.is_symlink():
        folder.unlink()
        return True
    if not folder.exists():
        return False
    real = confine(root, folder)
    graveyard = real.parent / TOMBSTONES
    graveyard.mkdir(mode=0o700, exist_ok=True)
    tomb = graveyard / f"{folder.name}.{secrets.token_hex(8)}"
    os.rename(real, tomb)  # atomic: from here a connector of the same name finds no folder
    shutil.rmtree(tomb, onerror=_log_leftover)
    return True


def _log_leftover(function: object, path: str, exc_info: tuple[type[BaseException], object, object]) -> None:
    # the folder is already out of the connector's way; a leftover only takes disk space
    log.warning("qdrant_tombstone_not_removed", path=path[-200:], error=exc_info[0].__name__)
