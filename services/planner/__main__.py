"""``python -m services.planner``: run the planner worker."""

from service_runtime.health import serve
from service_runtime.logs import configure_logging
from service_runtime.tracing import configure_tracing
from services.planner.app import create_app
from services.planner.settings import PlannerSettings


def main() -> None:
    settings = PlannerSettings()  # read from the environment
    configure_logging("planner", settings.log_level, settings.log_format)
    configure_tracing("planner")
    serve(create_app(settings), settings.health_host, settings.health_port, settings.log_level)


if __name__ == "__main__":
    main()
