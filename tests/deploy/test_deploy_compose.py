"""The compose stack wires topics, ports, paths and commands the way the code defines them."""

from __future__ import annotations

import importlib.util
import re

import pytest
from deploy_checks import (
    COMPOSE_FILE,
    DEPLOY,
    SCRAPE_FILE,
    cli_rejection,
    command_lines,
    compose_environment,
    load_settings,
    registered_commands,
    yaml_documents,
)

from zstream.service.config import env_of, settings

COMPOSE = yaml_documents(COMPOSE_FILE)[0]
SERVICES = COMPOSE["services"]
COMPOSE_DIR = COMPOSE_FILE.parent


def bind_mounts(service: dict) -> dict[str, str]:
    """Container path -> host path (resolved) of a service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (COMPOSE_DIR / source).resolve()
    return mounts


def zstream_commands(name: str, program: str = "zstream") -> list[list[str]]:
    """Argument lists of the ``program`` runs in a compose service's shell command."""
    service = SERVICES[name]
    command = service.get("command", [])
    script = "\n".join(command) if isinstance(command, list) else command
    return list(command_lines(script, program, compose_environment(service)))


@pytest.fixture(scope="module")
def stack_settings(tmp_path_factory):
    """The settings the compose zstream service runs with: its mounted TOML plus its environment."""
    service = SERVICES["zstream"]
    config_path = service["command"][service["command"].index("--config") + 1]
    toml_file = bind_mounts(service)[config_path]
    config = load_settings(toml_file.read_text(encoding="utf-8"), tmp_path_factory.mktemp("compose"))
    overrides = {name: value for name, value in service.get("environment", {}).items()}
    return config, overrides


def test_the_stack_has_every_component():
    assert {"kafka", "kafka-init", "basis-init", "zstream", "producer", "prometheus", "grafana"} <= SERVICES.keys()
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}  # KRaft, one node


def test_every_bind_mount_source_exists():
    for name, service in SERVICES.items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"compose service {name}: {source} (mounted at {target}) does not exist"


def test_environment_variables_name_real_settings():
    known = {env_of(item.name) for item in settings()}
    for name in ("zstream",):
        unknown = {key for key in SERVICES[name].get("environment", {}) if key.startswith("ZSTREAM_")} - known
        assert not unknown, f"compose service {name}: {sorted(unknown)} are not zstream settings"


def test_kafka_init_creates_the_topics_the_service_uses(stack_settings):
    config, _ = stack_settings
    assert config.create_topics is False
    command = SERVICES["kafka-init"]["command"]
    script = command[0] if isinstance(command, list) else command
    created = set(re.findall(r"--create\b.*?--topic\s+(\S+)", script.replace("\\\n", " ")))
    assert created == {config.input_topic, config.output_topic, config.dlq_topic, config.basis_topic,
                       config.refit_lease_topic}
    basis_creation = next(line for line in script.replace("\\\n", " ").splitlines() if f"--topic {config.basis_topic}" in line)
    assert "cleanup.policy=compact" in basis_creation


def test_the_service_reaches_kafka_and_exposes_its_metrics_port(stack_settings):
    config, overrides = stack_settings
    bootstrap = overrides.get(env_of("bootstrap_servers"), config.bootstrap_servers)
    kafka_listeners = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{bootstrap}" in kafka_listeners
    assert str(config.metrics_port) in [str(port) for port in SERVICES["zstream"]["expose"]]
    scrape = yaml_documents(SCRAPE_FILE)[0]
    job = next(job for job in scrape["scrape_configs"] if job["job_name"] == "zstream")
    assert job["dns_sd_configs"][0]["names"] == ["zstream"]
    assert job["dns_sd_configs"][0]["port"] == config.metrics_port


def test_the_starter_basis_is_written_where_the_service_reads_it(stack_settings):
    config, _ = stack_settings
    fits = [argv for argv in zstream_commands("basis-init") if argv[0] == "fit"]
    assert len(fits) == 1
    assert fits[0][fits[0].index("--out") + 1] == str(config.basis)


@pytest.mark.parametrize("service", ["basis-init", "producer"])
def test_zstream_commands_in_the_stack_parse(service):
    lines = zstream_commands(service)
    assert lines, f"compose service {service} runs no zstream command"
    for argv in lines:
        assert argv[0] in registered_commands(), f"compose service {service} runs 'zstream {argv[0]}', which does not exist"
        assert cli_rejection(argv) is None, f"compose service {service}: 'zstream {' '.join(argv)}': {cli_rejection(argv)}"


def test_the_producer_feeds_the_input_topic(stack_settings):
    config, overrides = stack_settings
    spec = importlib.util.spec_from_file_location("compose_producer", DEPLOY / "compose" / "producer.py")
    producer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(producer)
    runs = zstream_commands("producer", program="python")
    assert len(runs) == 1 and runs[0][0] == "/opt/zstream/producer.py"
    assert "/opt/zstream/producer.py" in bind_mounts(SERVICES["producer"])
    args = producer.build_parser().parse_args(runs[0][1:])
    simulated = [argv for argv in zstream_commands("producer") if argv[0] == "simulate"]
    assert [str(path) for path in args.files] == [argv[argv.index("--out") + 1] + "/spectra.jsonl" for argv in simulated]
    assert args.topic == config.input_topic
    assert args.bootstrap_servers == overrides.get(env_of("bootstrap_servers"), config.bootstrap_servers)


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard():
    grafana = bind_mounts(SERVICES["grafana"])
    provisioning = grafana["/etc/grafana/provisioning"]
    datasource = yaml_documents(provisioning / "datasources" / "prometheus.yml")[0]["datasources"][0]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert "9090:9090" in SERVICES["prometheus"]["ports"]
    provider = yaml_documents(provisioning / "dashboards" / "zstream.yml")[0]["providers"][0]
    dashboards = [target for target in grafana if target.startswith(provider["options"]["path"] + "/")]
    assert [grafana[target].name for target in dashboards] == ["zstream.json"]
