"""SigV4 signatures verified by a real S3 implementation: moto with IAM enforced (tests/support/s3.py)
accepts requests the API connector's signer signed with the right keys (static, or an STS session)
and refuses a wrong secret with 403."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from scf.connectors.api.sigv4 import AwsSigner
from scf.schemas.configs.api_signed import AwsSigV4Auth
from tests.support.s3 import REGION, IamMoto, iam_moto_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def moto() -> Iterator[IamMoto]:
    with iam_moto_server() as server:
        yield server


async def list_buckets(moto: IamMoto, **keys: str) -> httpx.Response:
    signer = AwsSigner(
        AwsSigV4Auth.model_validate({"type": "aws_sigv4", "region": REGION, "service": "s3", **keys})
    )
    url = httpx.URL(f"http://{moto.server.endpoint}/")
    headers = await signer.sign("GET", url, {}, b"")
    async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
        return await http.get(url, headers=headers)


async def test_the_right_keys_are_accepted(moto: IamMoto) -> None:
    admin = moto.server.credentials
    answer = await list_buckets(moto, access_key_id=admin.access_key, secret_access_key=admin.secret_key)
    assert answer.status_code == 200, answer.text
    assert "ListAllMyBucketsResult" in answer.text


async def test_an_sts_session_is_accepted(moto: IamMoto) -> None:
    session = moto.session
    assert session.session_token is not None
    answer = await list_buckets(
        moto,
        access_key_id=session.access_key,
        secret_access_key=session.secret_key,
        session_token=session.session_token,
    )
    assert answer.status_code == 200, answer.text


async def test_a_wrong_secret_is_refused(moto: IamMoto) -> None:
    admin = moto.server.credentials
    answer = await list_buckets(moto, access_key_id=admin.access_key, secret_access_key="not-the-secret")
    assert answer.status_code == 403, answer.text
    assert "SignatureDoesNotMatch" in answer.text
