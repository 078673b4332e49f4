"""An OpenAI-compatible Chat Completions and Responses server that answers with plausible workout
plans and exercise profiles, at a realistic pace, with faults on demand.

A development tool that stands in for OpenAI's API, not a service of the product.

Point the real ``openai`` SDK at it (``OPENAI_BASE_URL=http://127.0.0.1:8100/v1``) and chat's
``.create()``, ``.parse()`` and ``.stream()``, the Responses API's ``.create(background=True)``,
``.retrieve()`` and ``.cancel()``, and the Files and Batch APIs (``files.create(purpose="batch")``,
``batches.create()``, ``.retrieve()``, ``.cancel()``, ``files.content()``) work unchanged.
"""

from llm_simulator.app import create_app
from llm_simulator.config import SimulatorConfig

__all__ = ["SimulatorConfig", "create_app"]
