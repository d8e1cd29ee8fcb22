"""Settings come from one declaration; flags beat env beat the TOML file beat defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from zstream.errors import UserError
from zstream.service.config import (
    as_arguments,
    ServiceConfig,
    add_arguments,
    env_of,
    flag_of,
    kafka_client_options,
    load_config,
    reference_markdown,
    settings,
)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_precedence_flags_over_env_over_file(tmp_path: Path):
    config_file = tmp_path / "serve.toml"
    config_file.write_text('batch_size = 16\ninput_topic = "from-file"\ngroup_id = "file-group"\nrefit_enabled = false\n')
    env = {env_of("batch_size"): "32", env_of("input_topic"): "from-env"}
    flags = _parse(["--config", str(config_file), "--batch-size", "48"])
    config = load_config(flags, env=env)
    assert config.batch_size == 48
    assert config.input_topic == "from-env"
    assert config.group_id == "file-group"
    assert config.refit_enabled is False
    assert config.output_topic == ServiceConfig().output_topic


def test_boolean_flags_and_env_values():
    assert load_config(_parse(["--no-refit-enabled"]), env={}).refit_enabled is False
    assert load_config(_parse([]), env={env_of("refit_enabled"): "off"}).refit_enabled is False
    assert load_config(_parse([]), env={}).refit_enabled is True


def test_path_settings_are_paths(tmp_path: Path):
    config = load_config(_parse(["--archive", str(tmp_path)]), env={})
    assert config.archive == tmp_path


@pytest.mark.parametrize(
    ("toml_text", "env", "message"),
    [
        ("batch_sise = 3\n", {}, "did you mean 'batch_size'"),
        ("batch_size = 'many'\n", {}, "expects int"),
        ("", {env_of("metrics_port"): "nine"}, "ZSTREAM_METRICS_PORT"),
        ("batch_size = 2.5\n", {}, "expects int"),
    ],
)
def test_bad_settings_name_the_source(tmp_path: Path, toml_text: str, env: dict, message: str):
    config_file = tmp_path / "serve.toml"
    config_file.write_text(toml_text)
    with pytest.raises(UserError, match=message):
        load_config({"config": config_file}, env=env)


def test_missing_config_file_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="does not exist"):
        load_config({"config": tmp_path / "absent.toml"}, env={})


def test_reference_table_lists_every_setting_once():
    table = reference_markdown()
    for item in settings():
        assert table.count(f"`{flag_of(item.name)}`") == 1
        assert f"`{env_of(item.name)}`" in table


def test_secrets_are_redacted_and_security_passes_through(tmp_path: Path):
    config = ServiceConfig(
        bootstrap_servers="a:1,b:2",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_plain_username="alice",
        sasl_plain_password="hunter2",
        ssl_cafile=tmp_path / "ca.pem",
    )
    assert "hunter2" not in repr(config.redacted())
    options = kafka_client_options(config)
    assert options["bootstrap_servers"] == ["a:1", "b:2"]
    assert options["sasl_plain_password"] == "hunter2"
    assert options["ssl_cafile"] == str(tmp_path / "ca.pem")
    assert "ssl_keyfile" not in options


def test_empty_value_unsets_an_optional_setting():
    config = load_config(_parse([]), env={env_of("archive"): "", env_of("sasl_mechanism"): ""})
    assert config.archive is None and config.sasl_mechanism is None


def test_as_arguments_round_trips_through_the_parser_and_keeps_secrets_off_argv(tmp_path):
    config = ServiceConfig(batch_size=7, refit_enabled=False, archive=tmp_path, sasl_plain_password="hunter2",
                           z_max=1.5)
    flags, env = as_arguments(config)
    assert "hunter2" not in " ".join(flags)
    assert load_config(_parse(flags), env=env) == config
