"""`SCF_SECRETS_DIR`: every setting may come from a file named like its variable, as Kubernetes mounts a
Secret (`deploy/k8s/base`: `/run/secrets/scf`); the environment wins over a file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scf.fleet.settings import Settings

KEY = "ZmVybmV0LWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXQ="


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SCF_SECRETS_DIR", "SCF_SECRET_KEY", "SCF_AMQP_URL", "SCF_REDIS_URL", "SCF_RESULT_TTL"):
        monkeypatch.delenv(name, raising=False)


def kubernetes_secret_volume(root: Path, files: dict[str, str]) -> Path:
    """The layout the kubelet writes: the files in a timestamped folder, reached through `..data` links."""
    data = root / "..2024_01_01_00_00_00.000000001"
    data.mkdir(parents=True)
    for name, value in files.items():
        (data / name).write_text(value)
    (root / "..data").symlink_to(data.name)
    for name in files:
        (root / name).symlink_to(Path("..data") / name)
    return root


def test_secrets_come_from_files_named_like_their_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = kubernetes_secret_volume(
        tmp_path / "scf",
        {
            "SCF_SECRET_KEY": KEY + "\n",  # `kubectl create secret --from-file` keeps a trailing newline
            "SCF_AMQP_URL": "amqp://scf-fleet:s3cret@rabbitmq:5672/scf",
            "SCF_RESULT_TTL": "120",
        },
    )
    monkeypatch.setenv("SCF_SECRETS_DIR", str(folder))

    settings = Settings()

    assert settings.scf_secret_key is not None
    assert settings.scf_secret_key.get_secret_value() == KEY
    assert settings.amqp_url == "amqp://scf-fleet:s3cret@rabbitmq:5672/scf"
    assert settings.scf_result_ttl == 120
    assert settings.redis_url == "redis://127.0.0.1:6379/0"  # no file: the default


def test_the_environment_wins_over_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "SCF_AMQP_URL").write_text("amqp://from-file@rabbitmq:5672/")
    monkeypatch.setenv("SCF_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("SCF_AMQP_URL", "amqp://from-env@rabbitmq:5672/")

    assert Settings().amqp_url == "amqp://from-env@rabbitmq:5672/"


def test_without_the_variable_no_folder_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "SCF_AMQP_URL").write_text("amqp://from-file@rabbitmq:5672/")
    monkeypatch.chdir(tmp_path)

    assert "SCF_SECRETS_DIR" not in os.environ
    assert Settings().amqp_url == "amqp://guest:guest@127.0.0.1:5672/"


def test_a_missing_secrets_folder_stops_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCF_SECRETS_DIR", str(tmp_path / "not-mounted"))

    with pytest.raises(ValueError, match="is not a directory"):
        Settings()
