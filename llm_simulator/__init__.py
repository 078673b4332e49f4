"""An OpenAI-compatible Chat Completions server that answers with plausible workout plans and
exercise profiles, at a realistic pace, with faults on demand.

Point the real ``openai`` SDK at it (``OPENAI_BASE_URL=http://127.0.0.1:8100/v1``) and
``.create()``, ``.parse()`` and ``.stream()`` work unchanged.
"""

from llm_simulator.app import create_app
from llm_simulator.config import SimulatorConfig

__all__ = ["SimulatorConfig", "create_app"]
