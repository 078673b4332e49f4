"""Process-wide logging, configured once by the composition root."""

import logging
import sys


def configure_logging(service: str, level: str = "INFO") -> None:
    """One line per record, prefixed with the service name, to stderr (collected by the platform)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The broker and HTTP client libraries are chatty at INFO.
    for noisy in ("httpx", "httpx2", "faststream", "nats", "openai"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
