"""What the real API answers to a request it refuses: status, message, ``param`` and ``code``.

Every refusal the simulator makes is built here, worded as OpenAI words it, so tests written
against the simulator hold against the provider. Where each wording was seen:

- Request validation (``invalid_type``, ``missing_required_parameter``, ``invalid_value``,
  ``integer_below_min_value`` ..., ``empty_array``, ``unknown_parameter`` with nested paths like
  ``input[0].bogus``): observed on OpenAI's Chat Completions and Responses routes with raw
  requests and recorded in stdapi-ai/stdapi.ai (``stdapi/validation_errors.py`` and its
  request-validation test, probed 2026-09-23); the same bodies recur in bug reports, e.g.
  ``Invalid 'messages': empty array. ...`` (envoyproxy/ai-gateway's recorded cassettes).
- Chat's unknown top-level argument, ``Unrecognized request argument supplied: <name>`` with
  ``param`` and ``code`` null: quoted from the API in many issues (e.g. brainlid/langchain
  v0.1.5 changelog, "OpenAI returns Unrecognized request argument supplied: api_key").
- ``max_tokens is too large: N. This model supports at most M completion tokens, whereas you
  provided N.``, ``param`` the field, ``code`` ``invalid_value`` (bodies quoted in 2025 bug
  reports; older ones had ``code`` null).
- Reasoning models (gpt-5, o-series) on chat: ``Unsupported parameter: 'max_tokens' is not
  supported with this model. Use 'max_completion_tokens' instead.`` (``unsupported_parameter``)
  and ``Unsupported value: 'temperature' does not support 0.2 with this model. Only the default
  (1) value is supported.`` (``unsupported_value``), ``param`` the field (bodies quoted in many
  client fixes for gpt-5-class models).
- Context window: chat's ``This model's maximum context length is N tokens. However, your
  messages resulted in M tokens...`` (``param`` ``messages``) and the Responses API's ``Your
  input exceeds the context window of this model. Please adjust your input and try again.``
  (``param`` ``input``), both ``context_length_exceeded`` (anomalyco/opencode#6071,
  dyad-sh/dyad#1672, ChatGPTNextWeb/NextChat#3195).
- Unknown model: 404 ``The model `<id>` does not exist or you do not have access to it.``,
  ``code`` ``model_not_found``, ``param`` null.
- Strict schemas: ``Invalid schema for response_format '<name>': <problem>``; chat answers
  ``param`` ``response_format`` and ``code`` null, the Responses API ``param``
  ``text.format.schema`` and ``code`` ``invalid_json_schema`` (bodies quoted in issues about
  ``In context=('properties', ...)`` problems, e.g. codex's ``codex_output_schema`` refusals).
- Rate limits: 429 ``Rate limit reached for <model> in organization <org> on tokens per min
  (TPM): Limit N, Used U, Requested R. Please try again in 1.234s. Visit
  https://platform.openai.com/account/rate-limits to learn more.``, ``type`` ``tokens`` (or
  ``requests`` and ``requests per min (RPM)``), ``code`` ``rate_limit_exceeded``; one request
  above the whole TPM limit: ``Request too large for <model> in organization <org> on tokens per
  min (TPM): Limit N, Requested R. The input or output tokens must be reduced in order to run
  successfully. Visit ...`` (bodies quoted verbatim in many issues, e.g. FoundationAgents/MetaGPT#523,
  BuilderIO/micro-agent#86, TheR1D/shell_gpt#653, Aider-AI/aider#1880).
- A tier the model does not offer: ``Unsupported value: 'service_tier' does not support 'flex'
  with this model.``, ``param`` ``service_tier``, ``code`` ``unsupported_value`` (the API's wording
  for an unsupported value, as for ``temperature``; this body for ``service_tier`` is quoted in
  client fixtures). Flex without capacity: 429 with ``code`` ``resource_unavailable`` (the flex
  guide: "a 429 Resource Unavailable error code. You will not be charged"; clients match that
  code); its ``message`` and ``type`` were not found quoted anywhere, so they are the simulator's.
"""

from collections.abc import Sequence

from llm_simulator.protocol import ApiError

_INVALID = "invalid_request_error"


def invalid(message: str, param: str | None = None, code: str | None = None, status: int = 400) -> ApiError:
    """A request the API refuses as invalid."""
    return ApiError(status=status, message=message, type=_INVALID, param=param, code=code)


def unparsable_body() -> ApiError:
    return invalid("We could not parse the JSON body of your request.")


def unrecognized_argument(name: str) -> ApiError:
    """Chat Completions: a top-level argument the API does not know."""
    return invalid(f"Unrecognized request argument supplied: {name}")


def unknown_parameter(param: str) -> ApiError:
    """The Responses API (and nested objects anywhere): a parameter the API does not know."""
    return invalid(f"Unknown parameter: '{param}'.", param, "unknown_parameter")


def missing_parameter(param: str) -> ApiError:
    return invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def missing_model() -> ApiError:
    """Chat Completions reads ``model`` before anything else and words its absence so."""
    return invalid("you must provide a model parameter")


def invalid_type(param: str, expected: Sequence[str], got: str) -> ApiError:
    wanted = expected[0] if len(expected) == 1 else f"one of {listed(expected, 'or')}"
    return invalid(f"Invalid type for '{param}': expected {wanted}, but got {got} instead.", param, "invalid_type")


def invalid_value(param: str, value: str, supported: Sequence[object]) -> ApiError:
    values = listed([f"'{v}'" for v in supported], "and")
    return invalid(f"Invalid value: '{value}'. Supported values are: {values}.", param, "invalid_value")


def out_of_range(param: str, value: float, bound: float, *, below: bool, integer: bool) -> ApiError:
    kind = "integer" if integer else "decimal"
    side, word, op = ("below", "min", ">=") if below else ("above", "max", "<=")
    extreme = "minimum" if below else "maximum"
    return invalid(
        f"Invalid '{param}': {kind} {side} {extreme} value. "
        f"Expected a value {op} {bound:g}, but got {value:g} instead.",
        param,
        f"{kind}_{side}_{word}_value",
    )


def bad_length(param: str, *, kind: str, actual: int, bound: int, too_long: bool) -> ApiError:
    """A string or array outside its length bounds (``kind`` is ``string`` or ``array``)."""
    if kind == "array" and actual == 0 and not too_long:
        return invalid(
            f"Invalid '{param}': empty array. Expected an array with minimum length {bound}, "
            "but got an empty array instead.",
            param,
            "empty_array",
        )
    size = "long" if too_long else "short"
    extreme = "maximum" if too_long else "minimum"
    side = "above_max" if too_long else "below_min"
    return invalid(
        f"Invalid '{param}': {kind} too {size}. Expected a{'n' if kind == 'array' else ''} {kind} with {extreme} "
        f"length {bound}, but got a{'n' if kind == 'array' else ''} {kind} with length {actual} instead.",
        param,
        f"{kind}_{side}_length",
    )


def output_cap_too_large(field: str, requested: int, most: int) -> ApiError:
    return invalid(
        f"{field} is too large: {requested}. This model supports at most {most} completion tokens, "
        f"whereas you provided {requested}.",
        field,
        "invalid_value",
    )


def stream_options_without_stream() -> ApiError:
    """Observed on the API ("measured live" in third-party clients); its ``code`` was not recorded."""
    return invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")


def max_tokens_unsupported() -> ApiError:
    return invalid(
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
        "max_tokens",
        "unsupported_parameter",
    )


def temperature_unsupported(value: float) -> ApiError:
    return invalid(
        f"Unsupported value: 'temperature' does not support {value:g} with this model. "
        "Only the default (1) value is supported.",
        "temperature",
        "unsupported_value",
    )


def chat_context_exceeded(window: int, prompt: int, cap: int | None) -> ApiError:
    if cap is None:
        detail = f"However, your messages resulted in {prompt} tokens. Please reduce the length of the messages."
    else:
        detail = (
            f"However, you requested {prompt + cap} tokens ({prompt} in the messages, {cap} in the completion). "
            "Please reduce the length of the messages or completion."
        )
    message = f"This model's maximum context length is {window} tokens. {detail}"
    return invalid(message, "messages", "context_length_exceeded")


def responses_context_exceeded() -> ApiError:
    return invalid(
        "Your input exceeds the context window of this model. Please adjust your input and try again.",
        "input",
        "context_length_exceeded",
    )


def model_not_found(model: str) -> ApiError:
    return invalid(
        f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found", status=404
    )


def chat_invalid_schema(name: str, problem: str) -> ApiError:
    return invalid(f"Invalid schema for response_format '{name}': {problem}", "response_format")


def responses_invalid_schema(name: str, problem: str) -> ApiError:
    message = f"Invalid schema for response_format '{name}': {problem}"
    return invalid(message, "text.format.schema", "invalid_json_schema")


def response_not_found(response_id: str) -> ApiError:
    return invalid(f"Response with id '{response_id}' not found.", status=404)


def not_cancellable() -> ApiError:
    """Cancel is for background responses only (the background-mode guide)."""
    return invalid("Only responses created with background=true can be cancelled.")


def streaming_not_simulated() -> ApiError:
    """Not the API's refusal (it streams responses): what the simulator does not simulate."""
    return invalid("The simulator does not stream responses; use background.", "stream")


RATE_LIMITS_URL = "https://platform.openai.com/account/rate-limits"
ORGANIZATION = "org-simulator"


def rate_limit_reached(
    model: str, kind: str, *, limit: int, used: int, requested: int, wait: str, headers: dict[str, str]
) -> ApiError:
    """429 for a request that does not fit the model's budget yet; ``kind`` is ``requests`` or ``tokens``."""
    unit = "requests per min (RPM)" if kind == "requests" else "tokens per min (TPM)"
    return ApiError(
        status=429,
        message=(
            f"Rate limit reached for {model} in organization {ORGANIZATION} on {unit}: Limit {limit}, "
            f"Used {used}, Requested {requested}. Please try again in {wait}. Visit {RATE_LIMITS_URL} to learn more."
        ),
        type=kind,
        code="rate_limit_exceeded",
        headers=headers,
    )


def request_too_large(model: str, limit: int, requested: int, headers: dict[str, str]) -> ApiError:
    """429 for a request that could never fit: it alone asks for more tokens than the whole TPM limit."""
    return ApiError(
        status=429,
        message=(
            f"Request too large for {model} in organization {ORGANIZATION} on tokens per min (TPM): "
            f"Limit {limit}, Requested {requested}. The input or output tokens must be reduced in order to run "
            f"successfully. Visit {RATE_LIMITS_URL} to learn more."
        ),
        type="tokens",
        code="rate_limit_exceeded",
        headers=headers,
    )


def service_tier_unsupported(tier: str) -> ApiError:
    return invalid(
        f"Unsupported value: 'service_tier' does not support '{tier}' with this model.",
        "service_tier",
        "unsupported_value",
    )


def flex_unavailable() -> ApiError:
    """429 when Flex processing lacks the capacity for a request (not charged, per the flex guide)."""
    return ApiError(
        status=429,
        message=(
            "Resource Unavailable: Flex processing does not have the capacity for this request right now. "
            "Retry later, or retry with service_tier 'auto' to use standard processing."
        ),
        type="resource_unavailable",
        code="resource_unavailable",
    )


def listed(items: Sequence[str], conjunction: str) -> str:
    """Values as OpenAI lists them: ``'a' and 'b'``, ``'a', 'b', and 'c'``."""
    if len(items) < 3:
        return f" {conjunction} ".join(items)
    return f"{', '.join(items[:-1])}, {conjunction} {items[-1]}"
