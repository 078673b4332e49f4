"""``python -m services.profiler``: run the profiler worker."""

from contracts import roster
from service_runtime.worker import run_worker
from services.profiler.app import create_app
from services.profiler.settings import ProfilerSettings


def main() -> None:
    run_worker(roster.PROFILER, ProfilerSettings(), create_app)  # settings read from the environment


if __name__ == "__main__":
    main()
