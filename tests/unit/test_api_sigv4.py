"""AWS SigV4 through botocore's signer: what is signed and sent, the S3 variant, and the credential
chain when no keys are configured. (Signatures are verified by a real S3 implementation in
tests/integration/test_api_sigv4_server.py.)"""

from __future__ import annotations

import httpx
import pytest

from scf.connectors.api.sigv4 import AwsSigner, aws_query
from scf.schemas.configs.api_signed import AwsSigV4Auth
from scf.schemas.errors import ConfigurationError

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def config(**over: object) -> AwsSigV4Auth:
    body: dict[str, object] = {"type": "aws_sigv4", "region": "eu-west-1", **over}
    return AwsSigV4Auth.model_validate(body)


@pytest.fixture
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """No credentials from this machine: no env keys, no files, no metadata service."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


async def test_static_keys_sign_host_date_and_content_type() -> None:
    signer = AwsSigner(config(access_key_id="AKIDEXAMPLE", secret_access_key=SECRET))
    url = httpx.URL("https://abc.execute-api.eu-west-1.amazonaws.com/prod/items?b=2&a=1")
    signed = await signer.sign("POST", url, {"Content-Type": "application/json", "X-Other": "x"}, b"{}")
    auth = signed["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in auth
    assert "SignedHeaders=content-type;host;x-amz-date," in auth
    assert SECRET not in "".join(signed.values())
    assert "X-Amz-Content-SHA256" not in signed and "X-Amz-Security-Token" not in signed
    assert signer.secrets() == [SECRET]


async def test_a_session_token_is_sent_and_signed() -> None:
    signer = AwsSigner(config(access_key_id="ASIA1", secret_access_key="s", session_token="tok"))
    signed = await signer.sign("GET", httpx.URL("http://127.0.0.1:8080/v1"), {}, b"")
    assert signed["X-Amz-Security-Token"] == "tok"
    assert "x-amz-security-token" in signed["Authorization"]


async def test_the_s3_variant_sends_the_payload_hash() -> None:
    signer = AwsSigner(config(access_key_id="AK", secret_access_key="s", service="s3"))
    signed = await signer.sign("GET", httpx.URL("https://bucket.s3.amazonaws.com/key"), {}, b"")
    assert signed["X-Amz-Content-SHA256"]
    assert "/s3/aws4_request" in signed["Authorization"]


async def test_without_keys_the_credential_chain_is_used(
    monkeypatch: pytest.MonkeyPatch, no_ambient_aws: None
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    signer = AwsSigner(config())
    signed = await signer.sign("GET", httpx.URL("https://h.example.com/x"), {}, b"")
    assert signed["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAFROMENV/")


async def test_no_credentials_anywhere_is_a_configuration_error(no_ambient_aws: None) -> None:
    with pytest.raises(ConfigurationError, match="no AWS credentials were found"):
        await AwsSigner(config()).sign("GET", httpx.URL("https://h.example.com/x"), {}, b"")


def test_keys_go_together() -> None:
    with pytest.raises(ValueError, match="go together"):
        config(access_key_id="AK")
    with pytest.raises(ValueError, match="session_token goes with"):
        config(session_token="t")


def test_the_query_is_re_encoded_the_way_aws_canonicalises_it() -> None:
    url = httpx.URL("https://h.example.com/p?sp=x y&t=~&plus=a+b")
    assert aws_query(url) == "sp=x%20y&t=~&plus=a%20b"
