"""One in-process LLM simulator for the unit tests that talk to it over real HTTP.

Each test module resets it to its own knobs before every test (``reset_simulator``).
"""

from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest

from llm_simulator import SimulatorConfig
from tests.simulator_server import serving_simulator


@pytest.fixture(scope="session")
def simulator_url() -> Iterator[str]:
    with serving_simulator(SimulatorConfig()) as url:
        yield url


@pytest.fixture(scope="session")
async def admin(simulator_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to the simulator: its /_sim endpoints and raw wire objects."""
    async with httpx.AsyncClient(base_url=simulator_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
async def llm(simulator_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    """The real openai client, pointed at the simulator, with its own retries off."""
    client = openai.AsyncOpenAI(base_url=f"{simulator_url}/v1", api_key="sim", max_retries=0, timeout=10)
    yield client
    await client.close()
