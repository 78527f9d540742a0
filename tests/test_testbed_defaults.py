"""The testbed's defaults have one source, the dataclasses of testbed/config.py: `config_from_dict`
takes every missing value from `TestbedConfig()`, and testbed/default.toml, which writes every knob
out with its documentation, must say the same values."""

from __future__ import annotations

import dataclasses
import tomllib
from typing import Any

from testbed.config import DEFAULT_TOML, PricingConfig, TestbedConfig, config_from_dict


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> leaf value (lists and tuples compare as lists)."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out |= _flat(v, f"{prefix}{k}.")
        return out
    return {prefix[:-1]: list(data) if isinstance(data, list | tuple) else data}


def _disagreements(toml_text: str, defaults: TestbedConfig) -> list[str]:
    """The dotted keys where the TOML file and the dataclass defaults differ or one lacks the key
    (``seed`` aside: commented out in the file, None in the dataclass)."""
    written = _flat(tomllib.loads(toml_text))
    meant = _flat(defaults.to_dict())
    meant.pop("seed")
    return sorted(k for k in written.keys() | meant.keys() if written.get(k, ...) != meant.get(k))


def test_default_toml_says_the_dataclass_defaults() -> None:
    text = DEFAULT_TOML.read_text(encoding="utf-8")
    assert _disagreements(text, TestbedConfig()) == []
    assert config_from_dict(tomllib.loads(text)) == TestbedConfig()


def test_a_missing_key_takes_the_dataclass_default() -> None:
    assert config_from_dict({}) == TestbedConfig()
    cfg = config_from_dict({"issuer": {"workers": 2}, "pricing": {"duty": 1}})
    assert cfg.issuer == dataclasses.replace(TestbedConfig().issuer, workers=2)
    assert cfg.pricing == PricingConfig(duty=1)


def test_a_mutated_default_is_caught() -> None:
    text = DEFAULT_TOML.read_text(encoding="utf-8")
    assert "\nworkers = 4\n" in text and "\nduty = 10000 " in text
    assert _disagreements(text.replace("\nworkers = 4\n", "\nworkers = 5\n"), TestbedConfig()) == [
        "issuer.workers"
    ]
    unsaid = text.replace("\nduty = 10000 ", "\n# duty = 10000 ")
    assert _disagreements(unsaid, TestbedConfig()) == ["pricing.duty"]
    mutated = dataclasses.replace(TestbedConfig(), pricing=PricingConfig(service_fee=2000))
    assert _disagreements(text, mutated) == ["pricing.service_fee"]
