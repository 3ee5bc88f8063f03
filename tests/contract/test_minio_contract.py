"""The MinIO connector against the standard contract: moto's S3 server; moto enforcing IAM refuses keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scf.schemas.connection import ServiceConnection
from tests.contract.suite import CANARY_SECRET, ConnectorContract
from tests.support.s3 import IamMoto, S3Server, iam_moto_server, moto_server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


@pytest.fixture(scope="module")
def iam_s3() -> Iterator[IamMoto]:
    with iam_moto_server() as server:
        yield server


@pytest.fixture(scope="module")
def bucket(s3: S3Server) -> Iterator[str]:
    name = s3.new_bucket()
    yield name
    s3.drop_bucket(name)


class TestMinioContract(ConnectorContract):
    @pytest.fixture
    def connection(self, s3: S3Server, bucket: str) -> ServiceConnection:
        return s3.connection("contract_minio", bucket)

    @pytest.fixture
    def unreachable(self, s3: S3Server, bucket: str) -> ServiceConnection | None:
        return s3.connection(
            "contract_minio", bucket, endpoint="127.0.0.1:1", connection_timeout=2, retry_attempts=0
        )

    @pytest.fixture
    def bad_credentials(self, iam_s3: IamMoto) -> ServiceConnection | None:
        # moto with IAM enforced refuses a key it never issued (InvalidAccessKeyId), as S3 does
        server = iam_s3.server
        return server.connection(
            "contract_minio", "any-bucket", access_key="AKIAUNKNOWNCONTRACT", secret_key=CANARY_SECRET
        )
