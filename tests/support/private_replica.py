"""A private PostgreSQL streaming replica of a `PrivatePostgres` primary, for failover tests.

Built with `pg_basebackup -R` (which writes `standby.signal` and `primary_conninfo`), it runs as a hot
standby on its own free loopback port: it answers reads, refuses writes, and keeps streaming from the
primary's port, so it follows the primary again after the primary is killed and started on that port.
"""

from __future__ import annotations

import time
from typing import ClassVar

from tests.support.private_services import LOOPBACK, PG_BIN, PrivatePostgres, PrivateServiceError


class PrivatePostgresReplica(PrivatePostgres):
    """A hot standby of `primary` (which must be running when this one first starts).

    `wal_receiver_status_interval` and `wal_retrieve_retry_interval` are short so that the replica
    notices a lost primary, and streams again from it once it is back, within about a second.
    """

    kind = "postgres-replica"
    start_timeout: ClassVar[float] = 60.0

    def __init__(self, primary: PrivatePostgres) -> None:
        super().__init__()
        self.primary = primary

    def _prepare(self) -> None:
        if not self.primary.running:
            raise PrivateServiceError("the primary must run while its replica is first built")
        self._chown(self.dir)
        backup = [
            str(PG_BIN / "pg_basebackup"),
            *("-h", self.primary.host, "-p", str(self.primary.port), "-U", self.primary.user),
            *("-D", str(self.data_dir), "-R", "-X", "stream", "--no-sync"),
        ]
        result = self._run(backup, 120)
        if result.returncode != 0:
            raise PrivateServiceError(
                f"pg_basebackup failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        settings = {  # later lines win: these override the primary's port and socket dir copied here
            "port": str(self.port),
            "unix_socket_directories": f"'{self.dir}'",
            "hot_standby": "on",
            "wal_receiver_status_interval": "1",
            "wal_retrieve_retry_interval": "'500ms'",
        }
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# scf private replica\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def wait_streaming(self, timeout: float = 30.0) -> None:
        """Wait until the primary lists this replica as a streaming WAL receiver."""
        deadline = time.monotonic() + timeout
        probe = [
            str(PG_BIN / "psql"),
            *("-h", LOOPBACK, "-p", str(self.primary.port), "-U", self.primary.user, "-d", "postgres"),
            *("-XAtc", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"),
        ]
        while time.monotonic() < deadline:
            result = self._run(probe, 10)
            if result.returncode == 0 and result.stdout.strip() not in ("", "0"):
                return
            time.sleep(0.2)
        raise PrivateServiceError(f"the replica did not stream within {timeout:g}s\n{self.log_tail()}")
