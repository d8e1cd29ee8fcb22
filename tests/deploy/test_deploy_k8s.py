"""Kubernetes manifests agree with the service's settings, ports, topics and secrets."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from deploy_checks import K8S, image_user_id, k8s_object, k8s_objects, load_settings, yaml_documents

from zstream.service.config import env_of, settings

DEPLOYMENT = k8s_object("Deployment", "zstream")
POD = DEPLOYMENT["spec"]["template"]
CONTAINER = next(container for container in POD["spec"]["containers"] if container["name"] == "zstream")
SECRET_EXAMPLE = yaml_documents(K8S / "secret.example.yaml")[0]


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """Settings of a replica: the ConfigMap's TOML, as the service's own reader loads it."""
    args = CONTAINER["args"]
    config_path = PurePosixPath(args[args.index("--config") + 1])
    mount = next(m for m in CONTAINER["volumeMounts"] if m["mountPath"] == str(config_path.parent))
    volume = next(v for v in POD["spec"]["volumes"] if v["name"] == mount["name"])
    configmap = k8s_object("ConfigMap", volume["configMap"]["name"])
    return load_settings(configmap["data"][config_path.name], tmp_path_factory.mktemp("k8s"))


def mounted_volume(path: str) -> dict:
    """The pod volume whose mount holds ``path``."""
    mount = next(m for m in CONTAINER["volumeMounts"] if PurePosixPath(path).is_relative_to(m["mountPath"]))
    return next(v for v in POD["spec"]["volumes"] if v["name"] == mount["name"])


def test_kustomization_lists_existing_files_and_leaves_the_secret_example_out():
    resources = yaml_documents(K8S / "kustomization.yaml")[0]["resources"]
    assert all((K8S / name).is_file() for name in resources)
    assert "secret.example.yaml" not in resources
    kinds = {obj["kind"] for name in resources for obj in yaml_documents(K8S / name)}
    assert {"Deployment", "ConfigMap", "Service", "PodDisruptionBudget", "ScaledObject", "TriggerAuthentication"} <= kinds


def test_every_replica_gets_a_gpu():
    assert int(CONTAINER["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert CONTAINER["resources"]["requests"]["nvidia.com/gpu"] == CONTAINER["resources"]["limits"]["nvidia.com/gpu"]


def test_the_configmap_asks_for_the_gpu_and_keeps_secrets_out(config):
    assert config.device.startswith("cuda")
    secret_settings = [item.name for item in settings() if item.metadata["secret"]]
    assert secret_settings and all(getattr(config, name) is None for name in secret_settings)


def test_credentials_come_from_the_secret_and_name_real_settings():
    known = {env_of(item.name): item for item in settings()}
    env = {variable["name"]: variable for variable in CONTAINER["env"]}
    assert set(env) <= set(known), f"unknown ZSTREAM_ variables {sorted(set(env) - set(known))}"
    for item in settings():
        if item.metadata["secret"]:
            reference = env[env_of(item.name)]["valueFrom"]["secretKeyRef"]
            assert reference["name"] == SECRET_EXAMPLE["metadata"]["name"]
            assert reference["key"] in SECRET_EXAMPLE["stringData"]
    for variable in env.values():
        if "valueFrom" in variable:
            assert variable["valueFrom"]["secretKeyRef"]["key"] in SECRET_EXAMPLE["stringData"], variable["name"]


def test_files_named_by_the_settings_are_on_mounted_volumes(config):
    ca_volume = mounted_volume(str(config.ssl_cafile))
    assert ca_volume["secret"]["secretName"] == SECRET_EXAMPLE["metadata"]["name"]
    assert PurePosixPath(config.ssl_cafile).name in {item["path"] for item in ca_volume["secret"]["items"]}
    for path in (config.basis, config.archive):
        claim = mounted_volume(str(path))["persistentVolumeClaim"]["claimName"]
        assert k8s_object("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"]


def test_probes_metrics_port_and_scrape_annotations_match_the_settings(config):
    port = next(p for p in CONTAINER["ports"] if p["name"] == "metrics")
    assert port["containerPort"] == config.metrics_port
    assert CONTAINER["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert CONTAINER["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    annotations = POD["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(config.metrics_port)
    assert annotations["prometheus.io/path"] == "/metrics"
    service = k8s_object("Service")
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(config.metrics_port, "metrics")]


def test_service_pdb_and_autoscaler_select_the_deployment():
    pod_labels = POD["metadata"]["labels"]
    assert DEPLOYMENT["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert k8s_object("Service")["spec"]["selector"].items() <= pod_labels.items()
    assert k8s_object("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    target = k8s_object("ScaledObject")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", DEPLOYMENT["metadata"]["name"])


def test_pods_run_as_the_image_user_without_privileges():
    security = POD["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == image_user_id()
    assert CONTAINER["securityContext"]["allowPrivilegeEscalation"] is False


def test_autoscaling_follows_the_consumer_group_and_stops_at_the_partition_count(config):
    scaled = k8s_object("ScaledObject")["spec"]
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert metadata["topic"] == config.input_topic
    assert metadata["consumerGroup"] == config.group_id
    assert metadata["bootstrapServers"] == config.bootstrap_servers
    assert metadata["allowIdleConsumers"] == "false"
    assert metadata["offsetResetPolicy"] == config.auto_offset_reset
    topics = {obj["metadata"]["name"]: obj["spec"] for obj in yaml_documents(K8S / "topics.yaml")}
    assert scaled["maxReplicaCount"] == topics[config.input_topic]["partitions"]
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    authentication = k8s_object("TriggerAuthentication", trigger["authenticationRef"]["name"])
    for reference in authentication["spec"]["secretTargetRef"]:
        assert reference["name"] == SECRET_EXAMPLE["metadata"]["name"]
        assert reference["key"] in SECRET_EXAMPLE["stringData"], reference["parameter"]


def test_topics_are_the_ones_the_service_uses(config):
    assert config.create_topics is False  # topics.yaml (or the Kafka team) owns them
    topics = {obj["metadata"]["name"]: obj["spec"] for obj in yaml_documents(K8S / "topics.yaml")}
    assert set(topics) == {config.input_topic, config.output_topic, config.dlq_topic, config.basis_topic,
                           config.refit_lease_topic}
    assert topics[config.basis_topic]["config"]["cleanup.policy"] == "compact"
    assert topics[config.basis_topic]["partitions"] == 1
    assert topics[config.refit_lease_topic]["partitions"] == 1  # its one holder is the refit leader
    for spec in topics.values():
        assert int(spec["config"].get("max.message.bytes", config.max_message_bytes)) >= config.max_message_bytes


def test_every_manifest_names_its_kind_and_api_version():
    for obj in k8s_objects():
        assert obj["apiVersion"] and obj["kind"] and obj["metadata"]["name"]


def test_refits_are_on_and_left_to_the_elected_leader(config):
    """docs/operations.md: every replica may refit; the refit lease lets exactly one do it."""
    assert config.refit_enabled is True and config.archive is not None
