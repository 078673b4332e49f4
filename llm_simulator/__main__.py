"""``python -m llm_simulator``: serve the simulator with uvicorn.

Every knob of :class:`SimulatorConfig` is a flag (``--tokens-per-second 50``) whose default comes
from ``SIM_<KNOB>`` in the environment (``SIM_TOKENS_PER_SECOND=50``); flags win.

``python -m llm_simulator extract-openapi [--reference PATH]`` instead rewrites the committed
extract of OpenAI's OpenAPI description that requests are validated against (``openapi_extract``).
"""

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import uvicorn
from pydantic import ValidationError

from llm_simulator import openapi_extract
from llm_simulator.app import create_app
from llm_simulator.config import SimulatorConfig
from service_runtime.logs import configure_logging

log = logging.getLogger("llm_simulator")

# A hang fault holds its connection open; shutdown should not wait the hang out.
_GRACEFUL_SHUTDOWN_SECONDS = 3


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> None:
    """Parse flags and environment, then serve until interrupted."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["extract-openapi"]:
        openapi_extract.main(argv[1:])
        return
    parser = _parser(environ)
    args = parser.parse_args(argv)
    try:
        config = _config(args)
    except ValidationError as exc:
        parser.error(str(exc))
    configure_logging("llm-simulator", args.log_level, args.log_format)
    app = create_app(config)
    knobs = ", ".join(f"{k}={v}" for k, v in config.model_dump().items())
    log.info("LLM simulator serving OpenAI's API at http://%s:%d/v1 (%s)", args.host, args.port, knobs)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,  # keep the process-wide logging configured above
        access_log=args.access_log,
        ws="none",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
    )


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llm_simulator",
        description="An OpenAI-compatible LLM simulator. Each flag defaults to the SIM_<FLAG> environment variable.",
    )
    parser.add_argument("--host", default=environ.get("SIM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(environ.get("SIM_PORT", "8100")))
    parser.add_argument("--log-level", default=environ.get("SIM_LOG_LEVEL", "INFO"))
    parser.add_argument("--log-format", choices=("json", "text"), default=environ.get("LOG_FORMAT", "json"))
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=environ.get("SIM_ACCESS_LOG", "").lower() in ("1", "true", "yes"),
        help="log one line per HTTP request",
    )
    for name, field in SimulatorConfig.model_fields.items():
        env = f"SIM_{name.upper()}"
        help_text = f"{field.description} (env {env}; default {_default(name)})"
        if name == "models":
            help_text = f"comma-separated model ids. {help_text}"
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=environ.get(env), help=help_text)
    return parser


def _default(name: str) -> Any:
    value = SimulatorConfig.model_fields[name].get_default(call_default_factory=True)
    return ",".join(value) if isinstance(value, list) else value


def _config(args: argparse.Namespace) -> SimulatorConfig:
    values: dict[str, Any] = {}
    for name in SimulatorConfig.model_fields:
        raw = getattr(args, name)
        if raw is None:
            continue
        if name == "models":
            values[name] = [m.strip() for m in str(raw).split(",") if m.strip()]
        elif name == "seed" and str(raw).strip().lower() in ("", "none", "random"):
            values[name] = None
        else:
            # Strings on purpose: pydantic's lax mode turns "400" into 400.0 and rejects "fast".
            values[name] = raw
    return SimulatorConfig.model_validate(values)


if __name__ == "__main__":
    main()
