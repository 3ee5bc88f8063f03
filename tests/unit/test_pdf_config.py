"""`custom_config` of a pdf connector, as the dispatcher checks it on create: defaults that fit the
fleet's deadline, and refusals of values that could widen the sandbox or reach the command line.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from scf.schemas.configs import config_model
from scf.schemas.configs.pdf import PdfConfig
from scf.schemas.connection import ServiceConnection


def test_the_registry_knows_the_pdf_config() -> None:
    assert config_model("pdf") is PdfConfig


def test_defaults_keep_a_slow_parse_inside_the_fleets_default_deadline() -> None:
    config = PdfConfig()

    assert config.parse_timeout < 30
    assert config.cpu_limit_seconds <= config.parse_timeout
    assert (config.ocr, config.ocr_language, config.memory_limit_mb) == ("auto", "eng", 512)


@pytest.mark.parametrize(
    "custom_config",
    [
        {"memory_limit_mb": 64},
        {"ocr": "maybe"},
        {"ocr_language": "eng --psm 0"},
        {"ocr_language": "ENG"},
        {"max_parsers": 0},
        {"parse_timeout": 0},
        {"max_text_bytes": 10},
        {"unknown": 1},
    ],
)
def test_bad_configs_are_refused_on_create(custom_config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        ServiceConnection(service_type="pdf", service_name="bad_pdf", custom_config=custom_config)

    assert "custom_config" in str(caught.value)


@pytest.mark.parametrize("language", ["eng", "deu+fra", "chi_sim", "eng+chi_tra"])
def test_tesseract_language_codes_are_accepted(language: str) -> None:
    assert PdfConfig(ocr_language=language).ocr_language == language
