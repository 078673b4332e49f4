"""``python -m services.planner``: run the planner worker."""

from contracts import roster
from service_runtime.worker import run_worker
from services.planner.app import create_app
from services.planner.settings import PlannerSettings


def main() -> None:
    run_worker(roster.PLANNER, PlannerSettings(), create_app)  # settings read from the environment


if __name__ == "__main__":
    main()
