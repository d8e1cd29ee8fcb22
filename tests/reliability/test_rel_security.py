"""Security basics: TLS/SASL settings reach the Kafka clients unchanged, secrets are redacted, and the
metrics/health server binds only to the configured address."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

from zstream.service.config import kafka_client_options, load_config
from zstream.service.health import HealthServer
from zstream.service.metrics import ServiceMetrics

PASSWORD = "pa55-w0rd-from-env"


def test_tls_and_sasl_settings_reach_the_client_options(tmp_path: Path):
    toml = tmp_path / "serve.toml"
    toml.write_text(
        'security_protocol = "SASL_SSL"\nsasl_mechanism = "SCRAM-SHA-512"\nsasl_plain_username = "zstream"\n'
        f'ssl_cafile = "{tmp_path / "ca.pem"}"\nssl_certfile = "{tmp_path / "client.pem"}"\n'
        f'ssl_keyfile = "{tmp_path / "client.key"}"\n'
    )
    config = load_config({"bootstrap_servers": "kafka-0:9093,kafka-1:9093"},
                         env={"ZSTREAM_SASL_PLAIN_PASSWORD": PASSWORD}, config_path=toml)

    options = kafka_client_options(config)

    assert options == {
        "bootstrap_servers": ["kafka-0:9093", "kafka-1:9093"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "zstream",
        "sasl_plain_password": PASSWORD,
        "ssl_cafile": str(tmp_path / "ca.pem"),
        "ssl_certfile": str(tmp_path / "client.pem"),
        "ssl_keyfile": str(tmp_path / "client.key"),
    }
    assert PASSWORD not in repr(config.redacted()) and config.redacted()["sasl_plain_password"] == "***"


def test_plaintext_default_passes_no_security_extras():
    assert kafka_client_options(load_config({}, env={})) == {
        "bootstrap_servers": ["localhost:9092"], "security_protocol": "PLAINTEXT"}


def test_metrics_server_binds_only_the_configured_address():
    server = HealthServer(ServiceMetrics(), lambda: (True, "ready"), lambda: (True, "alive"), "127.0.0.2", 0).start()
    try:
        reply = urllib.request.urlopen(f"http://127.0.0.2:{server.port}/healthz", timeout=5)
        assert reply.status == 200
        with socket.socket() as probe:
            probe.settimeout(5)
            assert probe.connect_ex(("127.0.0.1", server.port)) != 0, "must not listen on other addresses"
    finally:
        server.stop()
