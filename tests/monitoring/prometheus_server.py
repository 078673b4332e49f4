"""A real Prometheus for tests: Debian's binary, fetched without root, run as a process on 127.0.0.1.

``find_tools`` returns the directory holding ``prometheus`` and ``promtool`` (fetching them with
``deploy/monitoring/fetch-prometheus.sh``, as ``make prometheus`` does, when they are missing) or
the reason they cannot be had. ``PrometheusServer`` scrapes the given targets every second with the
given rule files loaded and answers PromQL through its HTTP API.
"""

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from devstack import free_port
from devstack._readiness import http_ok, wait_until
from devstack.lifecycle import StartStop

__all__ = ["REPO_ROOT", "TOOLS", "PrometheusServer", "QueryError", "find_tools"]

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = REPO_ROOT / ".tools" / "prometheus" / "bin"
FETCH = REPO_ROOT / "deploy" / "monitoring" / "fetch-prometheus.sh"
# Scraping and rule evaluation every second lets a run of seconds fill rate() windows and fire alerts.
INTERVAL = "1s"


def find_tools(fetch_timeout: float = 600) -> tuple[Path | None, str]:
    """(directory with prometheus and promtool, "") or (None, why they cannot be had)."""
    if not all((TOOLS / name).exists() for name in ("prometheus", "promtool")):
        try:
            result = subprocess.run(
                ["sh", str(FETCH), str(TOOLS.parent)],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=fetch_timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"{FETCH.relative_to(REPO_ROOT)} could not run: {exc}"
        if result.returncode != 0:
            said = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
            return None, (
                f"no Prometheus binary: {FETCH.relative_to(REPO_ROOT)} (what `make prometheus` runs) failed:"
                f" {' / '.join(said)}. It needs apt-get and dpkg-deb and the machine's Debian mirror."
            )
    return TOOLS, ""


class QueryError(RuntimeError):
    """Prometheus refused or failed a query (a parse or execution error)."""


class PrometheusServer(StartStop):
    """One Prometheus with a generated config: job ``name`` scrapes ``base_url``/metrics for each target."""

    def __init__(
        self,
        binary: Path,
        directory: Path,
        targets: Mapping[str, str],
        *,
        rule_files: Sequence[Path] = (),
        start_timeout: float = 30.0,
    ) -> None:
        self.binary = binary
        self.directory = Path(directory)
        self.targets = dict(targets)
        self.rule_files = tuple(rule_files)
        self.start_timeout = start_timeout
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._client = httpx.Client(base_url=self.url, timeout=10, trust_env=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "prometheus.log"

    def config(self) -> dict[str, Any]:
        scrape_configs = []
        for job, base_url in self.targets.items():
            address = httpx.URL(base_url)
            scrape_configs.append(
                {
                    "job_name": job,
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": [f"{address.host}:{address.port}"]}],
                }
            )
        return {
            "global": {"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL, "evaluation_interval": INTERVAL},
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": scrape_configs,
        }

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        argv = [
            str(self.binary),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_until(
                lambda: http_ok(f"{self.url}/-/ready"),
                timeout=self.start_timeout,
                what=f"prometheus on port {self.port}",
                alive=lambda: self._process is not None and self._process.poll() is None,
                details=self.log_tail,
                interval=0.1,
            )
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        self._client.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # --- the HTTP API ---------------------------------------------------------------------

    def _get(self, path: str, **params: str) -> Any:
        response = self._client.get(path, params=params)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise QueryError(f"{body.get('errorType', response.status_code)}: {body.get('error', response.text)}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query at the current time: the result's series (a scalar comes back as one)."""
        data = self._get("/api/v1/query", query=promql)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def targets_health(self) -> dict[str, str]:
        """job -> health of its one target (up, down, unknown)."""
        active = self._get("/api/v1/targets", state="active")["activeTargets"]
        return {t["labels"]["job"]: t["health"] for t in active}

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its last evaluation (health, lastError, state)."""
        groups = self._get("/api/v1/rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts pending or firing now."""
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return alerts

    def wait_until_all_targets_up(self, timeout: float = 20.0) -> None:
        wait_until(
            lambda: set(self.targets_health().items()) == {(job, "up") for job in self.targets},
            timeout=timeout,
            what=f"prometheus scraping {', '.join(self.targets)}",
            details=lambda: f"{self.targets_health()}\n{self.log_tail()}",
            interval=0.2,
        )
