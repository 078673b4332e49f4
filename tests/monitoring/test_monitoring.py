"""The Grafana dashboard and the alert rules, against the metric catalogue and a real Prometheus.

Without a server: the dashboard is provisionable and reads only its ``${datasource}`` variable; every
series and label it and the alerts read is in ``service_runtime.metrics``, and every label value they
select on is one the services' code emits; the PrometheusRule in deploy/k8s is the rule file; every
alert and panel is explained in deploy/monitoring/README.md.

With Debian's ``prometheus`` and ``promtool`` (``make prometheus`` puts them in .tools/prometheus/bin;
missing, they are fetched the same way, and these tests skip, saying why, only when that fails):
``promtool check rules`` and the rules' unit tests pass; then one short run of the real system (its
own NATS and Postgres, the five processes of ``tests/stack.py``) scraped every second by a Prometheus
with the rules loaded, through which a few requests end each way a request can end. Afterwards every
dashboard and alert expression goes through Prometheus's query API: each must execute, each panel
must return data unless ``MAY_BE_EMPTY`` says why not, each series an alert reads must exist, and the
alerts the run provoked must fire.
"""

import asyncio
import contextlib
import importlib.util
import math
import re
import subprocess
import sys
import time
import types
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats
import nats.js.errors
import pytest
import yaml

from contracts import roster, streams
from contracts.streams import ConsumerSpec
from devstack import NatsServer, PostgresServer, migrate
from tests.monitoring.expressions import (
    GRAFANA_VARIABLES,
    README,
    RULE_FILE,
    TARGET_LABELS,
    Expression,
    alert_rules,
    catalogue,
    dashboard,
    expressions,
    grouping_labels,
    panels,
    selectors,
)
from tests.monitoring.prometheus_server import REPO_ROOT, PrometheusServer, QueryError, find_tools
from tests.stack import ServiceStack

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PROVISIONING = REPO_ROOT / "deploy" / "monitoring" / "grafana-provisioning"
PROMETHEUS_RULE = REPO_ROOT / "deploy" / "k8s" / "base" / "prometheus-rule.yaml"
RULE_UNIT_TESTS = REPO_ROOT / "deploy" / "monitoring" / "alerts-test.yaml"
# Where a label value comes from the code: the literal must appear in one of these packages.
EMITTING_CODE = ("services", "service_runtime", "contracts")
# Labels whose values are not code literals: target labels, HTTP status codes, histogram buckets.
FREE_VALUED_LABELS = TARGET_LABELS | {"status", "le"}

# --- the short run ---------------------------------------------------------------------------------

SEED_PROFILE = "I want to build muscle, 3x per week, I have a full gym"
RUN_ENV = {
    "SIM_TOKENS_PER_SECOND": "20000",
    "SIM_FIRST_TOKEN_DELAY_SECONDS": "0.05",
    # A request still processing this long after acceptance is failed by the sweeper (reason timeout).
    "REQUEST_DEADLINE_SECONDS": "15",
    "PERSISTER_SWEEP_INTERVAL_SECONDS": "1",
    # One retry, then give up: an LLM server error shows a redelivery and a failure within seconds.
    "CONSUMER_MAX_DELIVER": "2",
    # Calls go through the shared budget (its panels need its series), one far above what the run asks.
    "LLM_RATE_LIMITS": '{"gpt-4o-mini": {"tokens_per_minute": 10000000, "requests_per_minute": 10000}}',
}
# Two scrape (and rule evaluation) intervals of the test's Prometheus, and some slack.
SCRAPES = 2.5
# One active request per user, so a second request of a user who waits is refused with 429.
SERVICE_ENV = {"gateway": {"GATEWAY_MAX_ACTIVE_REQUESTS_PER_USER": "1"}}

# Panel queries that may return nothing (or only NaN) after the short run, and why. Keys: Expression.where.
# Empty today: the run makes every panel show a number.
MAY_BE_EMPTY: dict[str, str] = {}
# Series a panel or an alert reads that may not exist after the short run, and why. Keys: Selector.text.
# A labelled counter has no series before its first event, and `or vector(0)` in a panel would hide a
# missing one, so each selector is checked on its own.
SERIES_MAY_BE_ABSENT = {
    'workout_http_requests_total{status=~"5.."}': "no request fails with a 5xx in a healthy run",
    'up{job="nats/nats"}': "the short run's NATS is a local process without the chart's exporter",
}
# The NATS servers' own series (nats_*) come from the chart's exporter, which the short run does not
# run: their rules are proven by the promtool unit tests, and their names checked against the exporter.
NATS_EXPORTER_PREFIX = "nats_"

# Alert expressions return series only while their condition holds, so a healthy run leaves most of
# them empty: not firing is their documented empty result, and the series they read are checked on
# their own (above). The run provokes these, which must then be pending or firing:
PROVOKED_ALERTS = {
    "WorkoutDeadLettersIncreasing": "the planner gives up on the invalid, out-of-quota and failing-server requests",
    "WorkoutLLMQuotaExhausted": "the simulator answers insufficient_quota to two requests",
    "WorkoutRequestsTimingOut": "the sweeper fails the request whose LLM call hangs past its 15 s deadline",
}
# Alerts the run may set off besides, and why; any other active alert fails the test.
MAY_ALSO_BE_ACTIVE = {
    "WorkoutPlanFailureRatioHigh": "by design, the run fails six of its ten finished requests",
    "WorkoutLLMErrorBurst": (
        "the server-error request's calls fail on every try (three in place per delivery, five deliveries):"
        " a burst of one class"
    ),
}


# --- without a server --------------------------------------------------------------------------------


def test_the_dashboard_is_provisionable_and_reads_only_its_datasource_variable() -> None:
    board = dashboard()
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", board["uid"]), "a stable uid keeps links and provisioning apart"
    assert "id" not in board or board["id"] is None, "an exported id would clash on another Grafana"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if "datasource" in variable and variable["type"] != "datasource":
            assert variable["datasource"] == DATASOURCE, variable["name"]
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    taken: set[tuple[int, int]] = set()
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"panel {panel['title']!r} overlaps another"
        taken |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel.get("description"), f"panel {panel['title']!r} says not what it answers"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, f"{panel['title']} {target['refId']}"
            assert target["expr"].strip()


def test_the_grafana_provisioning_loads_the_dashboard_from_a_prometheus_datasource() -> None:
    (datasources,) = (PROVISIONING / "datasources").glob("*.yaml")
    (source,) = yaml.safe_load(datasources.read_text())["datasources"]
    assert source["type"] == "prometheus"
    (providers,) = (PROVISIONING / "dashboards").glob("*.yaml")
    (provider,) = yaml.safe_load(providers.read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"], "the provider must name the folder dashboard.json is copied to"


def test_every_series_and_label_the_dashboard_and_alerts_read_is_in_the_catalogue() -> None:
    known = catalogue()
    problems = []
    for expression in expressions():
        used = selectors(expression.promql)
        assert used, f"{expression.where}: reads no series"
        labels_in_reach = set(TARGET_LABELS)
        for selector in used:
            if selector.name not in known:
                problems.append(f"{expression.where}: {selector.name} is not in service_runtime/metrics.py")
                continue
            labels = known[selector.name][1]
            labels_in_reach |= labels
            for label, _, _ in selector.matchers:
                if label not in labels | TARGET_LABELS:
                    problems.append(f"{expression.where}: {selector.name} has no label {label!r}")
        for label in grouping_labels(expression.promql) - labels_in_reach:
            problems.append(f"{expression.where}: groups by {label!r}, which none of its series has")
    assert not problems, "\n".join(problems)


def test_every_label_value_they_select_on_is_one_the_services_emit() -> None:
    """A misspelt ``outcome="rate_limit"`` parses, runs and returns nothing forever: catch it here."""
    # Help texts list values unquoted, so a quoted literal is code that sets or passes it.
    code = "\n".join(path.read_text() for package in EMITTING_CODE for path in (REPO_ROOT / package).rglob("*.py"))
    durables = {v.durable for v in vars(streams).values() if isinstance(v, ConsumerSpec)}
    problems = []
    for expression in expressions():
        for selector in selectors(expression.promql):
            for label, op, value in selector.matchers:
                if label in FREE_VALUED_LABELS or op in ("!=", "!~"):
                    continue
                words = value.split("|") if op == "=~" else [value]
                for word in words:
                    if not re.fullmatch(r"[\w-]+", word):
                        continue  # a pattern, not a value
                    if label == "consumer" and word not in durables:
                        problems.append(f"{expression.where}: no durable consumer {word!r}")
                    elif f'"{word}"' not in code and f"'{word}'" not in code:
                        problems.append(f"{expression.where}: no code emits {label}={word!r}")
    assert not problems, "\n".join(problems)


def test_the_prometheus_rule_in_k8s_is_the_rule_file() -> None:
    result = subprocess.run(
        [sys.executable, "deploy/monitoring/prometheus_rule.py", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rule = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert rule["spec"] == yaml.safe_load(RULE_FILE.read_text())
    kustomization = yaml.safe_load((PROMETHEUS_RULE.parent / "kustomization.yaml").read_text())
    assert PROMETHEUS_RULE.name in kustomization["resources"]


def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook_section() -> None:
    readme = README.read_text()
    headings = set(re.findall(r"^#{2,4} (\S+)\s*$", readme, flags=re.MULTILINE))
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        url = urllib.parse.urlsplit(annotations["runbook_url"])
        assert url.scheme == "https" and url.netloc, f"{name}: runbook_url must be a link, not a path"
        assert url.path.endswith("/deploy/monitoring/README.md") and url.fragment == name.lower(), name
        assert name in headings, f"deploy/monitoring/README.md has no section `### {name}`"


def rule_generator() -> types.ModuleType:
    """deploy/monitoring/prometheus_rule.py, loaded from its path (deploy/ is no package)."""
    spec = importlib.util.spec_from_file_location("prometheus_rule", REPO_ROOT / "deploy/monitoring/prometheus_rule.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_runbook_url_is_one_configurable_base_and_the_alert_anchor() -> None:
    generator = rule_generator()
    text = RULE_FILE.read_text()
    assert generator.runbook_bases(text) == {generator.DEFAULT_RUNBOOK_BASE_URL}
    assert generator.runbook_problems(text) == []
    moved = generator.with_runbook_base(text, "https://runbooks.internal.example/workout/README.md")
    assert generator.runbook_bases(moved) == {"https://runbooks.internal.example/workout/README.md"}
    moved_rules = [r for g in yaml.safe_load(moved)["groups"] for r in g["rules"] if "alert" in r]
    assert [r["annotations"]["runbook_url"] for r in moved_rules] == [
        f"https://runbooks.internal.example/workout/README.md#{r['alert'].lower()}" for r in moved_rules
    ]
    assert generator.runbook_problems(generator.with_runbook_base(text, "deploy/monitoring/README.md"))


def test_every_service_has_a_rule_for_having_no_scrape_target_at_all() -> None:
    """``up == 0`` needs a target that fails; a service Prometheus never discovers has no ``up``."""
    (missing,) = [r for r in alert_rules() if r["alert"] == "WorkoutTargetMissing"]
    absent_jobs = re.findall(r'absent\(up\{job="(\w+)"\}\)', missing["expr"])
    assert sorted(absent_jobs) == sorted(roster.NAMES)
    assert re.fullmatch(r"(\s*absent\(up\{job=\"\w+\"\}\)\s*(or)?)+", missing["expr"]), missing["expr"]


def test_nats_alerts_watch_the_servers_storage_and_every_durable_consumer() -> None:
    rules = {r["alert"]: r for r in alert_rules()}
    assert {"NatsServerDown", "NatsJetStreamDisabled", "NatsJetStreamStorageNearLimit"} <= set(rules)
    durables = [v for v in vars(streams).values() if isinstance(v, ConsumerSpec) and v.stream == "WORKOUT_EVENTS"]
    (expected,) = re.findall(
        r'stream_name="WORKOUT_EVENTS"\}\)\s*<\s*(\d+)', rules["NatsWorkoutConsumersMissing"]["expr"]
    )
    assert int(expected) == len(durables), "the consumer count in NatsWorkoutConsumersMissing is contracts/streams.py's"
    nats_values = yaml.safe_load((REPO_ROOT / "deploy" / "nats" / "values.yaml").read_text())
    assert nats_values["promExporter"] == {"enabled": True, "podMonitor": {"enabled": True}}, (
        "the NATS alerts read the chart's exporter through its PodMonitor (job nats/nats)"
    )


def test_every_panel_is_explained_in_the_operator_docs() -> None:
    readme = README.read_text()
    missing = [p["title"] for p in panels() if p["type"] != "row" and f"**{p['title']}**" not in readme]
    assert not missing, f"deploy/monitoring/README.md does not explain: {missing}"


# --- promtool ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tools() -> Path:
    found, why = find_tools()
    if found is None:
        pytest.skip(why)
    return found


def promtool(tools: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools / "promtool"), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_accepts_the_rule_file_and_the_prometheus_rule(tools: Path, tmp_path: Path) -> None:
    result = promtool(tools, "check", "rules", str(RULE_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    as_applied = tmp_path / "prometheus-rule-spec.yaml"
    as_applied.write_text(yaml.safe_dump(yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]))
    result = promtool(tools, "check", "rules", str(as_applied))
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_on_the_series_its_unit_tests_describe(tools: Path) -> None:
    result = promtool(tools, "test", "rules", str(RULE_UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_UNIT_TESTS.read_text()))
    untested = {rule["alert"] for rule in alert_rules()} - tested
    assert not untested, f"alerts without a unit test in {RULE_UNIT_TESTS.name}: {sorted(untested)}"


# --- the short run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShortRun:
    prometheus: PrometheusServer
    services: ServiceStack
    outcomes: dict[str, str]
    seconds: float


@pytest.fixture(scope="module")
def scraped_services(
    tools: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceStack, PrometheusServer]]:
    """The system and a Prometheus scraping it, with its own NATS and Postgres.

    Not the session's: the e2e suite's services stay up until the session ends and share the
    durable consumers, so they would take some of this run's messages, unseen by this Prometheus.
    """
    workdir = tmp_path_factory.mktemp("monitoring")
    with contextlib.ExitStack() as running:
        nats_server = NatsServer(workdir / "nats")
        nats_server.start()
        running.callback(nats_server.stop)
        postgres = PostgresServer(workdir / "postgres", durable=False)
        postgres.start()
        running.callback(postgres.stop)
        migrate(postgres.url)
        services = ServiceStack(
            nats_url=nats_server.url,
            database_url=postgres.url,
            log_path=workdir / "services.log",
            env=RUN_ENV,
            service_env=SERVICE_ENV,
        )
        services.start()
        running.callback(services.stop)
        prometheus = PrometheusServer(
            tools / "prometheus",
            workdir / "prometheus",
            {job: services.health_urls[job] for job in roster.NAMES},
            rule_files=[RULE_FILE],
        )
        prometheus.start()
        running.callback(prometheus.stop)
        prometheus.wait_until_all_targets_up()
        yield services, prometheus


class Client:
    """The app's calls to the gateway, one user per request (the run caps each user at one active request)."""

    def __init__(self, http: httpx.AsyncClient, services: ServiceStack) -> None:
        self.http = http
        self.services = services

    async def submit(self, profile: str, user: uuid.UUID | None = None) -> tuple[httpx.Response, uuid.UUID]:
        user = user or uuid.uuid4()
        response = await self.http.post(
            f"{self.services.gateway_url}/functions/v1/trigger-workout-plan",
            headers={"Authorization": f"Bearer {self.services.token(user)}"},
            json={"userProfile": profile},
        )
        return response, user

    async def accepted(self, profile: str) -> tuple[str, uuid.UUID]:
        response, user = await self.submit(profile)
        assert response.status_code == 202, response.text
        return str(response.json()["request_id"]), user

    async def end(self, request_id: str, user: uuid.UUID, timeout: float = 45) -> str:
        headers = {"Authorization": f"Bearer {self.services.token(user)}"}
        async with asyncio.timeout(timeout):
            while True:
                response = await self.http.get(f"{self.services.gateway_url}/v1/requests/{request_id}", headers=headers)
                assert response.status_code == 200, response.text
                snapshot = response.json()
                if snapshot["status"] != "processing":
                    return f"{snapshot['status']}: {snapshot['error']}" if snapshot["error"] else snapshot["status"]
                await asyncio.sleep(0.2)

    async def finish(self, profile: str) -> str:
        return await self.end(*await self.accepted(profile))

    async def cancel_while_generating(self) -> str:
        request_id, user = await self.accepted(f"{SEED_PROFILE} [[sim:fault=hang]]")
        connection = await nats.connect(self.services.nats_url)
        try:
            async with asyncio.timeout(20):  # until the planner says its LLM call started
                while True:
                    with contextlib.suppress(nats.js.errors.NotFoundError):
                        notice = await connection.jetstream().get_last_msg("WORKOUT_PROGRESS", f"progress.{request_id}")
                        if notice.data is not None and b'"generating"' in notice.data:
                            break
                    await asyncio.sleep(0.1)
        finally:
            await connection.close()
        response = await self.http.delete(
            f"{self.services.gateway_url}/v1/requests/{request_id}",
            headers={"Authorization": f"Bearer {self.services.token(user)}"},
        )
        assert response.status_code == 200, response.text
        return await self.end(request_id, user)


@pytest.fixture(scope="module")
async def short_run(scraped_services: tuple[ServiceStack, PrometheusServer]) -> ShortRun:
    """Requests ending each way one can, in two waves, scraped every second; see the module docstring."""
    services, prometheus = scraped_services
    started = time.monotonic()
    outcomes: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
        client = Client(http, services)
        # Hangs until the sweeper fails it at its deadline; meanwhile its user is at the active cap.
        hung_id, hung_user = await client.accepted(f"{SEED_PROFILE} [[sim:fault=hang]]")
        refused, _ = await client.submit(SEED_PROFILE, hung_user)
        outcomes["second request of a user at the cap"] = str(refused.status_code)
        for wave in (1, 2):
            labels = ["completed", "invalid reply", "out of quota"] + (
                ["server error", "cancelled"] if wave == 1 else ["completed again"]
            )
            runs = [
                client.finish(SEED_PROFILE),
                client.finish(f"{SEED_PROFILE} [[sim:fault=malformed]]"),
                client.finish(f"{SEED_PROFILE} [[sim:fault=quota]]"),
                client.finish(f"{SEED_PROFILE} [[sim:fault=server_error]]")
                if wave == 1
                else client.finish(SEED_PROFILE),
            ]
            if wave == 1:
                runs.append(client.cancel_while_generating())
            for label, outcome in zip(labels, await asyncio.gather(*runs), strict=True):
                outcomes[f"wave {wave}: {label}"] = outcome
            # The second wave adds to series the first created, so rate() over them is not zero.
            await asyncio.sleep(SCRAPES)
        outcomes["hung past its deadline"] = await client.end(hung_id, hung_user, timeout=30)
    # The last values scraped, and the rules evaluated on them.
    await asyncio.sleep(SCRAPES)
    return ShortRun(prometheus, services, outcomes, time.monotonic() - started)


def test_the_short_run_ends_each_request_the_way_it_was_meant_to(short_run: ShortRun) -> None:
    print(f"short run: {short_run.seconds:.1f} s", short_run.outcomes)
    outcomes = short_run.outcomes
    assert outcomes["second request of a user at the cap"] == "429"
    for wave in (1, 2):
        assert outcomes[f"wave {wave}: completed"] == "completed"
        assert outcomes[f"wave {wave}: invalid reply"].startswith("failed"), outcomes
        assert "invalid_llm_reply" in outcomes[f"wave {wave}: invalid reply"]
        assert "quota" in outcomes[f"wave {wave}: out of quota"], outcomes
    assert outcomes["wave 2: completed again"] == "completed"
    assert outcomes["wave 1: server error"].startswith("failed"), outcomes
    assert outcomes["wave 1: cancelled"] == "cancelled: cancelled by the user"
    assert outcomes["hung past its deadline"].startswith("failed: timeout"), outcomes


def test_every_alert_rule_evaluates_without_error_in_prometheus(short_run: ShortRun) -> None:
    loaded = short_run.prometheus.rules()
    assert sorted(r["name"] for r in loaded) == sorted(r["alert"] for r in alert_rules())
    broken = [f"{r['name']}: {r.get('lastError')}" for r in loaded if r["health"] != "ok"]
    assert not broken, "\n".join(broken)


def evaluate(prometheus: PrometheusServer, expression: Expression) -> tuple[list[dict[str, object]], str]:
    try:
        return prometheus.query(expression.promql), ""
    except QueryError as exc:
        return [], f"{expression.where}: {exc}\n    {expression.promql}"


def has_a_number(series: list[dict[str, object]]) -> bool:
    return any(math.isfinite(float(s["value"][1])) for s in series)  # type: ignore[index]


def missing_series(prometheus: PrometheusServer, expression: Expression) -> list[str]:
    """What is wrong with the series ``expression`` reads: each selector must match some series."""
    problems = []
    for selector in selectors(expression.promql):
        if selector.text in SERIES_MAY_BE_ABSENT or selector.name.startswith(NATS_EXPORTER_PREFIX):
            continue
        count = Expression(f"{expression.where} reads {selector.text}", f"count({selector.text})")
        series, error = evaluate(prometheus, count)
        if error or not series:
            problems.append(error or f"{count.where}: no such series after the run")
    return problems


def test_every_dashboard_query_runs_reads_existing_series_and_returns_a_number(short_run: ShortRun) -> None:
    problems = []
    for expression in expressions():
        if not expression.where.startswith("panel "):
            continue
        series, error = evaluate(short_run.prometheus, expression)
        if error:
            problems.append(error)
            continue
        if not has_a_number(series) and expression.where not in MAY_BE_EMPTY:
            what = "only NaN" if series else "nothing"
            problems.append(f"{expression.where}: {what}\n    {expression.promql}")
        problems += missing_series(short_run.prometheus, expression)
    stale = set(MAY_BE_EMPTY) - {e.where for e in expressions()}
    assert not stale, f"MAY_BE_EMPTY names queries the dashboard no longer has: {stale}"
    assert not problems, f"{len(problems)} problems with dashboard queries:\n" + "\n".join(problems)


def test_every_alert_expression_runs_and_every_series_it_reads_exists(short_run: ShortRun) -> None:
    problems = []
    for expression in expressions():
        if not expression.where.startswith("alert "):
            continue
        _, error = evaluate(short_run.prometheus, expression)
        problems += [error] if error else missing_series(short_run.prometheus, expression)
    read = {selector.text for expression in expressions() for selector in selectors(expression.promql)}
    stale = set(SERIES_MAY_BE_ABSENT) - read
    assert not stale, f"SERIES_MAY_BE_ABSENT names selectors nothing reads: {stale}"
    assert not problems, "\n".join(problems)


def test_the_alerts_the_run_provoked_are_active_and_no_others(short_run: ShortRun) -> None:
    active = {a["labels"]["alertname"]: a["state"] for a in short_run.prometheus.alerts()}
    print("active alerts:", active)
    missing = set(PROVOKED_ALERTS) - set(active)
    assert not missing, f"not active after the run: {sorted(missing)} (active: {active})"
    unexpected = set(active) - set(PROVOKED_ALERTS) - set(MAY_ALSO_BE_ACTIVE)
    assert not unexpected, f"active without cause: {sorted(unexpected)}"
    # Without `for:`, a provoked alert fires at the first evaluation that sees its condition.
    for name in PROVOKED_ALERTS:
        rule = next(r for r in alert_rules() if r["alert"] == name)
        if "for" not in rule:
            assert active[name] == "firing", (name, active[name])


def test_grafana_variables_the_dashboard_uses_are_the_ones_filled_in() -> None:
    used = set(re.findall(r"\$\{?(\w+)", "\n".join(t["expr"] for p in panels() for t in p.get("targets", []))))
    assert used <= {v.removeprefix("$") for v in GRAFANA_VARIABLES}, used
