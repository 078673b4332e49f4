"""What the Files and Batch APIs answer when they refuse: the HTTP refusals, the errors that fail
a batch's input file during ``validating`` (``errors.data``: ``code``, ``message``, ``param``,
``line``), and the errors of single requests in the error file.

Where each wording was seen:

- A batch's input errors come back on a *created* batch that turns ``failed`` (the guide's status
  table: "failed: the input file has failed the validation process"); the observed errors
  (meta-llama/llama-stack, ``tests/integration/batches/test_batches_errors.py``, which records
  what OpenAI answered): ``invalid_json_line`` "This line is not parseable as valid JSON.";
  ``missing_required_parameter`` "Missing required parameter: 'custom_id'." (``param`` the
  field); ``invalid_url`` "The URL provided for this request does not match the batch endpoint."
  (``param`` ``url``); ``streaming_unsupported`` "Chat Completions: Streaming is not supported in
  the Batch API." (``param`` ``body.stream``); ``model_not_found`` "The provided model 'x' is not
  supported by the Batch API." (``param`` ``body.model``); ``invalid_request`` "Model parameter is
  required." / "Messages parameter is required." (``param`` ``body.model`` / ``body.messages``);
  an unknown input file: ``invalid_request`` "Cannot find file <id>, or organization <org> does not
  have access to it." (``param`` ``file_id``, no line); cancelling a finished batch: 409 "Cannot
  cancel a batch with status 'completed'.".
- The codes ``duplicate_custom_id``, ``model_mismatch``, ``empty_file`` and ``too_many_tasks`` are
  documented (as listed in stdapi-ai/stdapi.ai#240); their messages were not found quoted, so they
  are the simulator's.
- Upload of a batch file that is not JSONL: 400 "Invalid file format for Batch API. Must be
  .jsonl", ``param`` and ``code`` null (observed through a proxy, BerriAI/litellm#37527).
- An unknown file: 404 "No such File object: <id>", ``param`` ``id`` (the OpenAI .NET library's
  files sample). An unknown batch's 404 wording is the simulator's.
- A request's own error codes (``request_timeout``, ``batch_cancelled``, ``batch_expired``) and
  their meanings are the published description's (``BatchRequestOutput.error``).
"""

from typing import Any

from llm_simulator import refusals
from llm_simulator.protocol import ApiError

# The API's per-batch limits (the guide, and CreateBatchRequest in the published description).
MAX_REQUESTS = 50_000
MAX_INPUT_BYTES = 200 * 1024 * 1024

BatchError = dict[str, Any]


def file_not_found(file_id: str) -> ApiError:
    return refusals.invalid(f"No such File object: {file_id}", "id", status=404)


def batch_not_found(batch_id: str) -> ApiError:
    return refusals.invalid(f"No batch found with id '{batch_id}'.", status=404)


def cannot_cancel(status: str) -> ApiError:
    return refusals.invalid(f"Cannot cancel a batch with status '{status}'.", status=409)


def not_jsonl() -> ApiError:
    return refusals.invalid("Invalid file format for Batch API. Must be .jsonl")


def file_too_large(size: int) -> ApiError:
    return refusals.invalid(
        f"File is too large for the Batch API: {size} bytes. A batch input file can be up to 200 MB.", "file"
    )


def endpoint_not_simulated(endpoint: str) -> ApiError:
    """Not the API's refusal (it batches these endpoints): what the simulator does not simulate."""
    return refusals.invalid(
        f"The simulator batches only /v1/chat/completions, not {endpoint}.", "endpoint", "invalid_value"
    )


def error(code: str, message: str, *, line: int | None = None, param: str | None = None) -> BatchError:
    """One entry of a failed batch's ``errors.data``."""
    return {"code": code, "message": message, "param": param, "line": line}


def from_refusal(refused: ApiError, line: int) -> BatchError:
    """A refusal worded as for a request body (a wrong type, a value not allowed), as a line's error."""
    return error(refused.code or "invalid_request", refused.message, line=line, param=refused.param)


def invalid_json_line(line: int) -> BatchError:
    return error("invalid_json_line", "This line is not parseable as valid JSON.", line=line)


def not_an_object(line: int) -> BatchError:
    return error("invalid_request", "Each line must be a JSON object.", line=line)


def missing_parameter(param: str, line: int) -> BatchError:
    return error("missing_required_parameter", f"Missing required parameter: '{param}'.", line=line, param=param)


def url_mismatch(line: int) -> BatchError:
    message = "The URL provided for this request does not match the batch endpoint."
    return error("invalid_url", message, line=line, param="url")


def duplicate_custom_id(custom_id: str, line: int) -> BatchError:
    message = f"The custom_id '{custom_id}' is used by an earlier request; each request needs its own."
    return error("duplicate_custom_id", message, line=line, param="custom_id")


def streaming_unsupported(line: int) -> BatchError:
    message = "Chat Completions: Streaming is not supported in the Batch API."
    return error("streaming_unsupported", message, line=line, param="body.stream")


def body_parameter_required(name: str, line: int) -> BatchError:
    return error("invalid_request", f"{name.capitalize()} parameter is required.", line=line, param=f"body.{name}")


def model_not_supported(model: str, line: int) -> BatchError:
    message = f"The provided model '{model}' is not supported by the Batch API."
    return error("model_not_found", message, line=line, param="body.model")


def model_mismatch(model: str, batch_model: str, line: int) -> BatchError:
    message = f"The model '{model}' differs from '{batch_model}' of the earlier requests; a batch uses one model."
    return error("model_mismatch", message, line=line, param="body.model")


def empty_file() -> BatchError:
    return error("empty_file", "The input file has no requests.")


def too_many_tasks(count: int) -> BatchError:
    message = f"The input file has {count} requests; a batch can hold at most {MAX_REQUESTS:,}."
    return error("too_many_tasks", message)


def input_file_missing(file_id: str) -> BatchError:
    message = f"Cannot find file {file_id}, or organization {refusals.ORGANIZATION} does not have access to it."
    return error("invalid_request", message, param="file_id")


def input_file_not_for_batches(file_id: str, purpose: str) -> BatchError:
    message = f"File {file_id} was uploaded with purpose '{purpose}'; a batch's input needs purpose 'batch'."
    return error("invalid_request", message, param="input_file_id")


def request_timeout() -> dict[str, str]:
    return {"code": "request_timeout", "message": "The underlying call to the model timed out."}


def batch_cancelled() -> dict[str, str]:
    return {"code": "batch_cancelled", "message": "The batch was cancelled before this request executed."}
