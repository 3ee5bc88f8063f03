"""S3 servers for tests: moto's S3 in a thread, moto enforcing IAM in a subprocess, or a real MinIO.

`moto_server()` accepts any credentials. `iam_moto_server()` runs moto with IAM enforcement in its own
process (the switch is process-wide) and provisions an admin key, a read-only key and temporary STS
credentials, so refusals are the server's own. `minio_from_env()` names a real MinIO when
SCF_TEST_MINIO_ENDPOINT is set (keys from SCF_TEST_MINIO_ACCESS_KEY / SCF_TEST_MINIO_SECRET_KEY).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from moto.server import ThreadedMotoServer

from scf.schemas.connection import ServiceConnection

REGION = "us-east-1"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Requests moto lets through unauthenticated before it enforces IAM: create_user, put_user_policy,
# create_access_key for the admin that provisions everything else.
_BOOTSTRAP_ACTIONS = 3


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class S3Server:
    """An S3 endpoint and credentials that may do everything on it."""

    kind: str
    endpoint: str
    credentials: Credentials
    secure: bool = False
    region: str = REGION

    def custom_config(self, bucket: str, **extra: Any) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "access_key": self.credentials.access_key,
            "secret_key": self.credentials.secret_key,
            "secure": self.secure,
            "region": self.region,
            "bucket_name": bucket,
            **extra,
        }

    def connection(self, service_name: str, bucket: str, **extra: Any) -> ServiceConnection:
        """A connector config for `bucket`; `extra` keys that are connection fields go there."""
        fields = {k: extra.pop(k) for k in list(extra) if k in ServiceConnection.model_fields}
        return ServiceConnection.model_validate(
            {
                "service_type": "minio",
                "service_name": service_name,
                "custom_config": self.custom_config(bucket, **extra),
                **fields,
            }
        )

    def admin(self) -> Minio:
        """An SDK client for setting up and inspecting what a test did (never the code under test)."""
        return Minio(
            self.endpoint,
            access_key=self.credentials.access_key,
            secret_key=self.credentials.secret_key,
            session_token=self.credentials.session_token,
            secure=self.secure,
            region=self.region,
            http_client=urllib3.PoolManager(retries=urllib3.Retry(total=0)),
        )

    def new_bucket(self, create: bool = True) -> str:
        name = f"scf-test-{uuid.uuid4().hex[:16]}"
        if create:
            self.admin().make_bucket(name)
        return name

    def drop_bucket(self, bucket: str) -> None:
        client = self.admin()
        if not client.bucket_exists(bucket):
            return
        names = [o.object_name for o in client.list_objects(bucket, recursive=True) if o.object_name]
        for error in client.remove_objects(bucket, [DeleteObject(n) for n in names]):
            raise AssertionError(f"cleanup could not delete {error.name}: {error.code}")
        client.remove_bucket(bucket)


@contextlib.contextmanager
def moto_server() -> Iterator[S3Server]:
    """moto's S3 on a free loopback port, in a thread of this process; any credentials are accepted."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server("moto", f"{host}:{port}", Credentials("moto-access-key", "moto-secret-key"))
    finally:
        server.stop()


@dataclass(frozen=True)
class IamMoto:
    """moto enforcing IAM: `server` has an admin key; `reader` may only list and read; `session` is STS."""

    server: S3Server
    reader: Credentials
    session: Credentials


@contextlib.contextmanager
def iam_moto_server() -> Iterator[IamMoto]:
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_BOOTSTRAP_ACTIONS)}
    proc = subprocess.Popen(  # our own module, no user input
        [sys.executable, "-m", "tests.support.s3"],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"moto with IAM did not start (exit code {proc.wait(timeout=10)})")
        facts = json.loads(line)
        admin = S3Server("moto-iam", f"127.0.0.1:{facts['port']}", Credentials(**facts["admin"]))
        yield IamMoto(admin, Credentials(**facts["reader"]), Credentials(**facts["session"]))
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the server stops when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def minio_from_env() -> S3Server | None:
    endpoint = os.environ.get("SCF_TEST_MINIO_ENDPOINT")
    if not endpoint:
        return None
    credentials = Credentials(
        os.environ.get("SCF_TEST_MINIO_ACCESS_KEY", "minioadmin"),
        os.environ.get("SCF_TEST_MINIO_SECRET_KEY", "minioadmin"),
    )
    secure = os.environ.get("SCF_TEST_MINIO_SECURE", "").lower() in {"1", "true", "yes"}
    return S3Server("minio", endpoint, credentials, secure, os.environ.get("SCF_TEST_MINIO_REGION", REGION))


# --- the IAM-enforcing server process ------------------------------------------------------------------


def _policy(*actions: str) -> str:
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _serve_with_iam() -> None:
    """Run moto with IAM enforced, provision the keys, print them as one JSON line, stop on stdin EOF."""
    import boto3  # type: ignore[import-untyped]  # moto's own dependency; used only to provision IAM

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"

    def client(service: str, key: str = "bootstrap", secret: str = "bootstrap") -> Any:
        return boto3.client(
            service, endpoint_url=url, region_name=REGION, aws_access_key_id=key, aws_secret_access_key=secret
        )

    iam = client("iam")  # the first _BOOTSTRAP_ACTIONS calls pass without authentication
    iam.create_user(UserName="scf-admin")
    iam.put_user_policy(UserName="scf-admin", PolicyName="all", PolicyDocument=_policy("*"))
    admin = iam.create_access_key(UserName="scf-admin")["AccessKey"]
    admin_key, admin_secret = admin["AccessKeyId"], admin["SecretAccessKey"]
    iam = client("iam", admin_key, admin_secret)
    iam.create_user(UserName="scf-reader")
    read_only = _policy("s3:ListAllMyBuckets", "s3:ListBucket", "s3:GetObject", "s3:GetBucketLocation")
    iam.put_user_policy(UserName="scf-reader", PolicyName="read", PolicyDocument=read_only)
    reader = iam.create_access_key(UserName="scf-reader")["AccessKey"]
    assume = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
    trust = {"Version": "2012-10-17", "Statement": [assume]}
    role = iam.create_role(RoleName="scf-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(RoleName="scf-role", PolicyName="s3", PolicyDocument=_policy("s3:*"))
    sts = client("sts", admin_key, admin_secret)
    session = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="scf-test")["Credentials"]
    facts = {
        "port": server.get_host_and_port()[1],
        "admin": {"access_key": admin_key, "secret_key": admin_secret},
        "reader": {"access_key": reader["AccessKeyId"], "secret_key": reader["SecretAccessKey"]},
        "session": {
            "access_key": session["AccessKeyId"],
            "secret_key": session["SecretAccessKey"],
            "session_token": session["SessionToken"],
        },
    }
    print(json.dumps(facts), flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    _serve_with_iam()
