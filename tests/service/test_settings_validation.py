"""Every setting refuses values outside its type, range or choice set, from every source, in one line."""

from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path

import pytest

from zstream.errors import UserError
from zstream.service.config import ServiceConfig, env_of, flag_of, load_config, settings

INVALID: dict[str, list[object]] = {
    "bootstrap_servers": ["", "localhost", "a:1,,b:2"],
    "input_topic": ["", "has space", "a" * 250, 5],
    "output_topic": ["bad/name"],
    "dlq_topic": [""],
    "basis_topic": ["ünïcode"],
    "refit_lease_topic": ["a b"],
    "group_id": [""],
    "auto_offset_reset": ["sideways", "EARLIEST"],
    "session_timeout_ms": [0, 999, 2_000_000, "soon"],
    "heartbeat_interval_ms": [0, -1],
    "create_topics": ["maybe", 2],
    "topic_partitions": [0],
    "max_message_bytes": [0, 100],
    "broker_timeout_ms": [0],
    "broker_retries": [-1, 1.5],
    "retry_backoff_ms": [-5],
    "retry_backoff_max_ms": [-1],
    "security_protocol": ["TLS", "plaintext"],
    "sasl_mechanism": ["SCRAM"],
    "sasl_plain_username": [" "],
    "sasl_plain_password": [" "],
    "ssl_cafile": [7],
    "ssl_certfile": [True],
    "ssl_keyfile": [1.5],
    "basis": [3],
    "calibration": [False],
    "thresholds": [0],
    "z_min": [-0.1, "nan", "inf"],
    "z_max": [0, -1],
    "z_step": [0, 1.5, -0.001],
    "batch_size": [0, -3, 2.5, "many"],
    "max_wait_ms": [-5, 0],
    "device": ["gpu", "cuda:x", ""],
    "archive": [12],
    "archive_retention_days": [0, -1],
    "archive_max_spectra": [0],
    "refit_enabled": ["sometimes"],
    "refit_every_spectra": [0],
    "refit_every_minutes": [0],
    "refit_recent": [0],
    "refit_reservoir": [-1],
    "refit_holdout_fraction": [1.5, 0, 1, -0.2],
    "refit_margin": [-0.1, 1],
    "refit_max_iter": [0],
    "refit_min_p_z_ok": [-0.1, 1.1],
    "refit_anchor_sigmas": [-1],
    "refit_anchor_max": [0],
    "refit_max_flip_share": [1.5, -0.01],
    "refit_live_window": [-1],
    "metrics_host": [""],
    "metrics_port": [-1, 70000],
    "liveness_timeout_s": [0, -1],
    "log_level": ["LOUD"],
}
CASES = [(name, value) for name, values in INVALID.items() for value in values]
_KINDS = typing.get_type_hints(ServiceConfig)
TEXT_CASES = [  # what env and flags can carry: text; a number for a str/Path setting is only wrong in TOML
    (name, value) for name, value in CASES
    if isinstance(value, str) or not ({str, Path} & {_KINDS[name], *typing.get_args(_KINDS[name])})
]


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    return repr(value)


def test_every_setting_has_invalid_examples():
    assert set(INVALID) == {item.name for item in settings()}


@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{n}={v!r}" for n, v in CASES])
def test_invalid_value_is_refused_from_toml(tmp_path: Path, name: str, value: object):
    if isinstance(value, str) and value in ("nan", "inf"):
        text = f"{name} = {value}\n"  # TOML's own non-finite floats
    else:
        text = f"{name} = {_toml(value)}\n"
    config_file = tmp_path / "serve.toml"
    config_file.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as refused:
        load_config({"config": config_file}, env={})
    message = str(refused.value)
    assert "\n" not in message and repr(name) in message and "expects" in message


@pytest.mark.parametrize(("name", "value"), TEXT_CASES, ids=[f"{n}={v!r}" for n, v in TEXT_CASES])
def test_invalid_value_is_refused_from_env_and_flags(name: str, value: object):
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if text == "" and ServiceConfig.__dataclass_fields__[name].default is None:
        pytest.skip("an empty value unsets an optional setting")
    with pytest.raises(UserError, match=env_of(name)):
        load_config({}, env={env_of(name): text})
    with pytest.raises(UserError, match=flag_of(name)):
        load_config({name: text}, env={})


def test_message_names_the_allowed_values():
    with pytest.raises(UserError, match=r"'auto_offset_reset' expects str, one of earliest, latest, got 'sideways'"):
        load_config({"auto_offset_reset": "sideways"}, env={})
    with pytest.raises(UserError, match=r"'refit_holdout_fraction' expects float in \(0, 1\), got 1.5"):
        load_config({"refit_holdout_fraction": "1.5"}, env={})
    with pytest.raises(UserError, match=r"'batch_size' expects int in \[1, 100,000\], got 0"):
        load_config({"batch_size": "0"}, env={})


@pytest.mark.parametrize(("values", "message"), [
    ({"z_min": 2.0, "z_max": 1.0}, "z_min must be below z_max"),
    ({"heartbeat_interval_ms": 10000, "session_timeout_ms": 6000}, "heartbeat_interval_ms must be below"),
    ({"retry_backoff_ms": 5000, "retry_backoff_max_ms": 1000}, "retry_backoff_ms must be at most"),
])
def test_settings_that_contradict_each_other_are_refused(values: dict, message: str):
    with pytest.raises(UserError, match=message):
        ServiceConfig(**values)


def test_direct_construction_is_checked_too():
    with pytest.raises(UserError, match="'batch_size'"):
        ServiceConfig(batch_size=0)


def test_defaults_and_shipped_configs_are_valid():
    ServiceConfig()
    root = Path(__file__).resolve().parents[2]
    load_config({"config": root / "deploy" / "compose" / "zstream.toml"}, env={})


def test_serve_exits_2_with_one_line():
    result = subprocess.run([sys.executable, "-m", "zstream.cli", "serve", "--batch-size", "0"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'batch_size'" in lines[0] and "[1, 100,000]" in lines[0], result.stderr


def test_the_stream_benchmark_builds_valid_settings_before_it_has_a_broker(tmp_path: Path):
    import argparse

    from zstream.bench.stream import _config

    args = argparse.Namespace(bootstrap_servers=None, batch_size=16, max_wait_ms=200, device="auto")
    assert _config(args, tmp_path / "basis.parquet").bootstrap_servers == ServiceConfig().bootstrap_servers
