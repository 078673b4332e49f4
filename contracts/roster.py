"""The services of the system, written once: who they are, how each is run, where it answers and
which durable consumers it runs.

Everything that starts, deploys, measures or breaks the services reads this list (``devstack run``,
``tests/stack.py``, the benches, the manifest tests, the fault suite), and each worker's composition
root names its entry (``service_runtime.worker``), which refuses to start with consumers the roster
does not list. Data only, like the rest of ``contracts``: importing it costs nothing.
"""

from dataclasses import dataclass

from contracts import streams
from contracts.events import FailureStage
from contracts.streams import ConsumerSpec

__all__ = ["GATEWAY", "NAMES", "PERSISTER", "PLANNER", "PROFILER", "SERVICES", "WORKERS", "ServiceSpec"]


@dataclass(frozen=True)
class ServiceSpec:
    """One service: its name, which is also the stage its ``plan.failed`` events name, the NATS client
    name, the log and trace service name and the Kubernetes Deployment's; and its durable consumers.

    A service with consumers is a worker: it serves ``/healthz``, ``/readyz`` and ``/metrics`` on
    ``HEALTH_PORT``. The gateway serves those beside its API on ``GATEWAY_PORT``.
    """

    name: FailureStage
    consumers: tuple[ConsumerSpec, ...] = ()

    @property
    def module(self) -> str:
        """What ``python -m`` runs, in a container and in every local stack."""
        return f"services.{self.name}"

    @property
    def is_worker(self) -> bool:
        return bool(self.consumers)

    @property
    def port_variable(self) -> str:
        """The environment variable that sets the port it serves HTTP on."""
        return "HEALTH_PORT" if self.is_worker else "GATEWAY_PORT"


GATEWAY = ServiceSpec("gateway")
PLANNER = ServiceSpec("planner", (streams.PLANNER, streams.PLANNER_CANCELLATIONS, streams.PLANNER_WEEKS))
PROFILER = ServiceSpec("profiler", (streams.PROFILER,))
PERSISTER = ServiceSpec(
    "persister",
    (
        streams.PERSISTER_PLANS,
        streams.PERSISTER_PROFILES,
        streams.PERSISTER_FAILURES,
        streams.PERSISTER_CANCELLATIONS,
        streams.PERSISTER_LEDGER,
        streams.PERSISTER_WEEKS,
        streams.PERSISTER_REVIEWS,
    ),
)

# In the order the local stacks start them.
SERVICES = (GATEWAY, PLANNER, PROFILER, PERSISTER)
WORKERS = tuple(service for service in SERVICES if service.is_worker)
NAMES = tuple(service.name for service in SERVICES)
