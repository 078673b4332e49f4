"""``python -m services.profiler``: run the profiler worker."""

from service_runtime.health import serve
from service_runtime.logs import configure_logging
from service_runtime.tracing import configure_tracing
from services.profiler.app import create_app
from services.profiler.settings import ProfilerSettings


def main() -> None:
    settings = ProfilerSettings()  # read from the environment
    configure_logging("profiler", settings.log_level, settings.log_format)
    configure_tracing("profiler")
    serve(create_app(settings), settings.health_host, settings.health_port, settings.log_level)


if __name__ == "__main__":
    main()
