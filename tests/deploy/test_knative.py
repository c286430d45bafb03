"""deploy/knative: every manifest parses, the core kinds (and the pods Knative makes of each Service)
validate against Kubernetes' own schemas, and the pieces fit the code: the commands are ones `imagesearch`
takes, the probes and the Trigger's path are routes the apps serve, the event types are ones the embed
function handles, every environment variable is a setting the code reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from support.settings_names import known_environment

from imagesearch.cli.main import build_parser
from imagesearch.cli.serve import DEFAULT_GRACEFUL_TIMEOUT
from imagesearch.config import REPO_ROOT
from imagesearch.ingest.cloudevents import AZURE_BLOB_CREATED, GCS_FINALIZED
from imagesearch.local.functions import FUNCTION_NAMES, load_function

KNATIVE = REPO_ROOT / "deploy" / "knative"
KUBERNETES_VERSION = "1.30.0"  # the oldest Kubernetes the current Knative releases support
# Fields of a Knative revision's spec that a Kubernetes PodSpec does not have.
KNATIVE_ONLY = ("containerConcurrency", "timeoutSeconds", "responseStartTimeoutSeconds", "idleTimeoutSeconds")


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc]


def manifests() -> list[dict[str, Any]]:
    return [doc for path in sorted(KNATIVE.rglob("*.yaml")) for doc in documents(path)]


def of_kind(kind: str, api_version: str) -> dict[str, dict[str, Any]]:
    found = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == kind}
    for name, doc in found.items():
        assert doc["apiVersion"] == api_version, (kind, name, doc["apiVersion"])
    return found


def services() -> dict[str, dict[str, Any]]:
    return of_kind("Service", "serving.knative.dev/v1")


def served(function: str) -> set[tuple[str, str]]:
    """(METHOD, path) of every route the function's app serves."""
    paths = load_function(function).app.openapi()["paths"].items()
    return {(method.upper(), path) for path, operations in paths for method in operations}


def the_container(spec: dict[str, Any]) -> dict[str, Any]:
    (container,) = spec["containers"]
    return container


def test_every_manifest_is_a_kubernetes_object_of_a_known_kind() -> None:
    kinds = {(d["apiVersion"], d["kind"]) for d in manifests()}
    assert kinds == {
        ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("serving.knative.dev/v1", "Service"),
        ("eventing.knative.dev/v1", "Broker"),
        ("eventing.knative.dev/v1", "Trigger"),
    }
    for doc in manifests():
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "imagesearch", doc["metadata"]


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret", "Job", "CronJob"])
def test_core_objects_validate_against_the_kubernetes_schema(kind: str) -> None:
    for doc in (d for d in manifests() if d["kind"] == kind):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_pod_of_each_service_validates_against_the_kubernetes_schema() -> None:
    for name, service in services().items():
        spec = {k: v for k, v in service["spec"]["template"]["spec"].items() if k not in KNATIVE_ONLY}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_one_service_per_function_scaling_to_zero_from_the_one_image() -> None:
    found = services()
    assert set(found) == {f"imagesearch-{name}" for name in FUNCTION_NAMES}
    for name, service in found.items():
        template = service["spec"]["template"]
        assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "0"
        container = the_container(template["spec"])
        assert container["image"] == "imagesearch", "the name the kustomizations set"
        assert "command" not in container, "the image's ENTRYPOINT (imagesearch serve) runs"
        assert container["args"][0] == name.removeprefix("imagesearch-")
        build_parser().parse_args(["serve", *container["args"]])  # arguments serve takes
        assert container["ports"] == [{"containerPort": 8080}]
        assert container["securityContext"]["runAsNonRoot"] is True


def test_readiness_is_the_health_route_and_liveness_never_touches_the_database() -> None:
    for name, service in services().items():
        container = the_container(service["spec"]["template"]["spec"])
        assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
        assert ("GET", "/health") in served(name.removeprefix("imagesearch-"))
        # A deep /health (auth off) would restart every pod while the database is down.
        assert container["livenessProbe"] == {"tcpSocket": {"port": 8080}, "periodSeconds": 10}


def test_requests_in_flight_get_their_grace_before_knative_gives_up() -> None:
    """Knative stops a pod with the revision's timeout as its grace period: serve's own drain is shorter."""
    for service in services().values():
        spec = service["spec"]["template"]["spec"]
        args = build_parser().parse_args(["serve", *the_container(spec)["args"]])
        assert args.graceful_timeout <= spec["timeoutSeconds"]
        assert args.graceful_timeout >= DEFAULT_GRACEFUL_TIMEOUT


def test_the_embed_service_is_internal_and_the_triggers_deliver_to_its_events_route() -> None:
    embed = services()["imagesearch-embed"]
    assert embed["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    (broker,) = of_kind("Broker", "eventing.knative.dev/v1")
    triggers = of_kind("Trigger", "eventing.knative.dev/v1").values()
    assert ("POST", "/events") in served("embed")
    types = set()
    for trigger in triggers:
        spec = trigger["spec"]
        assert spec["broker"] == broker
        assert spec["subscriber"] == {
            "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "imagesearch-embed"},
            "uri": "/events",
        }
        assert set(spec["filter"]["attributes"]) == {"type"}
        types.add(spec["filter"]["attributes"]["type"])
    assert types == {GCS_FINALIZED, AZURE_BLOB_CREATED}


def test_every_environment_variable_is_a_setting_the_code_reads() -> None:
    (config,) = of_kind("ConfigMap", "v1").values()
    (secret,) = of_kind("Secret", "v1").values()
    names = set(config["data"]) | set(secret["stringData"])
    assert names <= known_environment(), names - known_environment()
    assert {"DATABASE_URL", "IMAGESEARCH_STORAGE_URL", "IMAGESEARCH_STORAGE_ENDPOINT_URL"} <= names
    refs = {"configMapRef": config["metadata"]["name"], "secretRef": secret["metadata"]["name"]}
    for service in services().values():
        container = the_container(service["spec"]["template"]["spec"])
        assert container["envFrom"] == [{kind: {"name": name}} for kind, name in refs.items()]
        assert "env" not in container


def test_the_migrate_job_runs_imagesearch_migrate_with_the_database_secret() -> None:
    (job,) = of_kind("Job", "batch/v1").values()
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    container = the_container(pod)
    assert container["image"] == "imagesearch"
    assert container["command"] == ["imagesearch", "migrate"]
    build_parser().parse_args(container["command"][1:] + container.get("args", []))
    (secret,) = of_kind("Secret", "v1")
    assert container["envFrom"] == [{"secretRef": {"name": secret}}]


def test_the_webhook_dispatcher_runs_every_minute_with_the_services_configuration() -> None:
    (cron,) = of_kind("CronJob", "batch/v1").values()
    assert cron["spec"]["schedule"] == "* * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    container = the_container(cron["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    assert container["image"] == "imagesearch"
    args = build_parser().parse_args(container["command"][1:])
    assert (args.command, args.webhooks_command) == ("webhooks", "dispatch")
    # It stops starting batches before the next run is due, and well within the Job's deadline.
    assert args.seconds < 60 < cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    embed = the_container(services()["imagesearch-embed"]["spec"]["template"]["spec"])
    assert container["envFrom"] == embed["envFrom"]


def test_the_kustomizations_list_every_manifest_and_set_one_image() -> None:
    listed: set[Path] = set()
    images = []
    for path in sorted(KNATIVE.rglob("kustomization.yaml")):
        (kustomization,) = documents(path)
        listed |= {(path.parent / resource).resolve() for resource in kustomization["resources"]}
        images.append(kustomization["images"])
    applied_by_hand = {KNATIVE / "secret.example.yaml"}
    manifests_on_disk = {p.resolve() for p in KNATIVE.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == manifests_on_disk - applied_by_hand
    assert all(image == images[0] for image in images), "the services and the migration: one image"
    assert [image["name"] for image in images[0]] == ["imagesearch"]
