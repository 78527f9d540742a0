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


def test_the_rehearsal_model_assumes_the_testbeds_defaults_when_capacity_json_is_silent() -> None:
    # capacity.json from a target that does not publish its configuration (no `configured`):
    # the model takes the reference testbed's defaults from the dataclasses, not a copy of its own
    # (a copy said exponential service while the testbed serves lognormal).
    from analysis.rehearsal_model import _testbed_config

    d = TestbedConfig()
    conf = _testbed_config({})
    assert conf["workers"] == d.issuer.workers
    assert conf["service_mean_s"] == d.issuer.service.mean
    assert conf["distribution"] == d.issuer.service.distribution
    assert conf["sigma"] == d.issuer.service.sigma
    assert conf["payments_per_s"] == d.payments.workers / d.payments.service.mean
    assert conf["waste"] is (d.issuer.overload == "unbounded")
    # what capacity.json does record wins, key by key
    part = _testbed_config({"configured": {"issuer": {"workers": 2, "overload": "shed"}}})
    got = (part["workers"], part["waste"], part["service_mean_s"])
    assert got == (2, False, d.issuer.service.mean)
