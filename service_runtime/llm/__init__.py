"""LLM calls: the structured-call port, its adapters, and the provider's rules, each said once.

- ``port``: ``StructuredCalls`` ("a validated reply of type T for this prompt, under this key"),
  ``Prompt``, ``StructuredReply`` and ``first_usable``, the one retry ladder;
- ``chat``: ``ChatCompletions``, a streamed chat completion per call (any OpenAI-compatible server);
- ``responses``: ``BackgroundResponses``, re-attaching background responses (OpenAI's Responses API);
- ``batch``: ``StructuredBatches`` ("a validated reply of type T for each of these prompts", through
  the provider's Batch API), and ``openai_batch.OpenAiBatches``, its adapter over OpenAI's Files
  and Batch APIs;
- ``fake``: ``ScriptedCalls`` and ``ScriptedBatches``, in memory, for tests;
- ``errors``: one table from the SDK's errors to delivery outcomes and metric labels;
- ``metering``: metrics and the cost ledger of every call;
- ``client``: the SDK client as every service builds it, and the checks before a service starts.
"""

from service_runtime.llm.client import LlmSettings, build_openai_client, check_llm_setup, warn_if_unknown_model
from service_runtime.llm.errors import InvalidReply
from service_runtime.llm.port import Prompt, StructuredCalls, StructuredReply, first_usable

__all__ = [
    "InvalidReply",
    "LlmSettings",
    "Prompt",
    "StructuredCalls",
    "StructuredReply",
    "build_openai_client",
    "check_llm_setup",
    "first_usable",
    "warn_if_unknown_model",
]
