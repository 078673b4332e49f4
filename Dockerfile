# syntax=docker/dockerfile:1
#
# One image for every process of the system; the container's command picks the process:
#   python -m services.gateway | services.planner | services.profiler | services.persister
#   python -m services.persister migrate      (the migration Job)
#   python -m llm_simulator                   (development only)
#
#   docker build -t workout-plans:$(git rev-parse --short HEAD) .
#
# Both stages use the same Python image, so the virtual environment's interpreter links stay valid
# when it is copied across. Pinned by digest, so a rebuild of the same commit gets the same base:
# the multi-platform index that `python:3.11-slim` named in the Docker official images' public record
# (github.com/docker-library/repo-info, repos/python/remote/3.11-slim.md: Python 3.11.15 on Debian
# trixie, built 2026-08-05). To move it, read the new digest there, or with
# `docker buildx imagetools inspect python:3.11-slim` (the index's "Digest:"), and replace it here.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff

FROM ${PYTHON_IMAGE} AS build

# The uv the Makefile pins, so the image resolves exactly what `make` does from uv.lock.
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

# Bytecode compiled at build time: the root filesystem is read-only at run time.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Dependencies first, from the lock alone, so a source change does not rebuild this layer.
# --no-dev leaves out the test tools and the embedded NATS/Postgres of the local stack.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project

COPY contracts ./contracts
COPY service_runtime ./service_runtime
COPY services ./services
COPY llm_simulator ./llm_simulator
RUN python -m compileall -q contracts service_runtime services llm_simulator


FROM ${PYTHON_IMAGE} AS runtime

# A fixed numeric id, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app

WORKDIR /app
# Owned by root and not writable by the app user: the code cannot be changed by the process running it.
COPY --from=build /app /app

ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 10001:10001

# gateway (GATEWAY_PORT); planner, profiler, persister health and metrics (HEALTH_PORT); the simulator.
EXPOSE 8000 8081 8082 8083 8100

CMD ["python", "-m", "services.gateway"]
