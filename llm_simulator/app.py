"""The HTTP surface: OpenAI's ``/v1`` endpoints plus ``/_sim`` endpoints to observe and steer the simulator.

Routes only translate HTTP to :class:`~llm_simulator.simulator.Simulator` calls and back.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llm_simulator import refusals
from llm_simulator.admission import chat_refusal, response_refusal
from llm_simulator.batch_routes import files_and_batches_routes
from llm_simulator.catalogue import exercises
from llm_simulator.config import SimulatorConfig
from llm_simulator.disconnects import StreamUntilDisconnect, unless_disconnected
from llm_simulator.edge import error_response, json_body, unauthorised
from llm_simulator.faults import garbled
from llm_simulator.pacing import paced_pieces
from llm_simulator.protocol import (
    ApiError,
    ChatCompletionRequest,
    chunk,
    completion,
    models_list,
    new_completion_id,
    new_request_id,
)
from llm_simulator.response_store import ResponseStore
from llm_simulator.responses_protocol import ResponseCreateRequest
from llm_simulator.simulator import Answer, Simulator

_KNOBS_NOT_AN_OBJECT = refusals.invalid("The body must be a JSON object of knobs to change.")

# What nginx logs for "client closed the request"; nobody receives it, but it reads well in logs.
_CLIENT_CLOSED = 499


def create_app(config: SimulatorConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> Starlette:
    """The simulator as an ASGI app. Each app has its own state: config, stats and random sequence.

    ``clock`` (seconds, monotonic) meters the rate limits and ages the prompt cache; tests pass
    their own to step time. Pacing always sleeps in real time."""
    # Read (and check) the exercise data now: a broken file stops the start, not a later request.
    exercises()
    simulator = Simulator(config or SimulatorConfig(), clock)
    started = int(time.time())

    async def chat_completions(request: Request) -> Response:
        request_id = new_request_id()
        if (denied := unauthorised(request)) is not None:
            return error_response(denied, request_id)
        chat = await json_body(request, "create_chat_completion", ChatCompletionRequest)
        if isinstance(chat, ApiError):
            return error_response(chat, request_id, simulator.limit_headers(None))
        if (refused := chat_refusal(chat, simulator.config)) is not None:
            return error_response(refused, request_id, simulator.limit_headers(chat.model))
        outcome = simulator.answer(chat)
        if isinstance(outcome, ApiError):
            return error_response(outcome, request_id)
        headers = {"x-request-id": request_id, **outcome.rate_limit_headers}
        if chat.stream:
            include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
            return StreamUntilDisconnect(
                _event_stream(simulator, outcome, chat.model, include_usage),
                media_type="text/event-stream",
                headers={**headers, "cache-control": "no-cache"},
            )
        delay = outcome.hang_seconds + outcome.pace.total_seconds(outcome.content)
        answered, _ = await unless_disconnected(request.receive, asyncio.sleep(delay))
        if not answered:
            simulator.abandoned(outcome)
            return Response(status_code=_CLIENT_CLOSED)
        simulator.delivered(outcome)
        body = completion(
            completion_id=new_completion_id(),
            model=chat.model,
            content=outcome.content,
            finish_reason=outcome.finish_reason,
            usage=outcome.usage,
            refused=outcome.refused,
            service_tier=outcome.service_tier,
        )
        return JSONResponse(body, headers=headers)

    async def list_models(request: Request) -> Response:
        if (denied := unauthorised(request)) is not None:
            return error_response(denied, new_request_id())
        return JSONResponse(models_list(simulator.config.models, started))

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def stats(_: Request) -> Response:
        return JSONResponse(simulator.stats.snapshot())

    async def reset(_: Request) -> Response:
        simulator.reset()
        return JSONResponse(simulator.stats.snapshot())

    async def get_config(_: Request) -> Response:
        return JSONResponse(simulator.config.model_dump(mode="json"))

    async def patch_config(request: Request) -> Response:
        try:
            changes = await request.json()
        except json.JSONDecodeError:
            return error_response(_KNOBS_NOT_AN_OBJECT, new_request_id())
        if not isinstance(changes, dict):
            return error_response(_KNOBS_NOT_AN_OBJECT, new_request_id())
        try:
            updated = simulator.configure(changes)
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors())
            return error_response(ApiError(status=422, message=detail, type="invalid_request_error"), new_request_id())
        return JSONResponse(updated.model_dump(mode="json"))

    async def http_error(_: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "Internal error."
        return error_response(
            ApiError(status=status, message=str(detail), type="invalid_request_error"), new_request_id()
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            *_responses_routes(simulator),
            *files_and_batches_routes(simulator),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/_sim/stats", stats, methods=["GET"]),
            Route("/_sim/reset", reset, methods=["POST"]),
            Route("/_sim/config", get_config, methods=["GET"]),
            Route("/_sim/config", patch_config, methods=["PATCH"]),
        ],
        exception_handlers={HTTPException: http_error},
    )


def _responses_routes(simulator: Simulator) -> list[Route]:
    """OpenAI's Responses API: create (background or not), retrieve, cancel; plus forgetting them all."""
    responses = ResponseStore(simulator)

    async def create_response(request: Request) -> Response:
        request_id = new_request_id()
        if (denied := unauthorised(request)) is not None:
            return error_response(denied, request_id)
        create = await json_body(request, "create_response", ResponseCreateRequest)
        if isinstance(create, ApiError):
            return error_response(create, request_id, simulator.limit_headers(None))
        if (refused := response_refusal(create, simulator.config)) is not None:
            return error_response(refused, request_id, simulator.limit_headers(create.model))
        if create.stream:
            return error_response(refusals.streaming_not_simulated(), request_id, simulator.limit_headers(create.model))
        # A background response is accepted first: a server fault shows later, as status "failed".
        outcome = simulator.answer(create.as_chat(), background=bool(create.background))
        if isinstance(outcome, ApiError):
            return error_response(outcome, request_id)
        headers = {"x-request-id": request_id, **outcome.rate_limit_headers}
        if create.background:
            return JSONResponse(responses.start(create, outcome).wire(), headers=headers)
        delay = outcome.hang_seconds + outcome.pace.total_seconds(outcome.content)
        answered, _ = await unless_disconnected(request.receive, asyncio.sleep(delay))
        if not answered:
            simulator.abandoned(outcome)
            return Response(status_code=_CLIENT_CLOSED)
        return JSONResponse(responses.answered(create, outcome).wire(), headers=headers)

    async def retrieve_response(request: Request) -> Response:
        request_id = new_request_id()
        if (denied := unauthorised(request)) is not None:
            return error_response(denied, request_id)
        response_id = request.path_params["response_id"]
        if (stored := responses.get(response_id)) is None:
            return error_response(refusals.response_not_found(response_id), request_id, simulator.limit_headers(None))
        headers = {"x-request-id": request_id, **simulator.limit_headers(stored.request.model)}
        if responses.garbled_now(stored):
            # A wire fault: this body is broken, the response itself is whole and retrievable again.
            return Response(garbled(json.dumps(stored.wire())), media_type="application/json", headers=headers)
        return JSONResponse(stored.wire(), headers=headers)

    async def cancel_response(request: Request) -> Response:
        request_id = new_request_id()
        if (denied := unauthorised(request)) is not None:
            return error_response(denied, request_id)
        response_id = request.path_params["response_id"]
        if (stored := responses.get(response_id)) is None:
            return error_response(refusals.response_not_found(response_id), request_id, simulator.limit_headers(None))
        limits = simulator.limit_headers(stored.request.model)
        if not stored.request.background:
            return error_response(refusals.not_cancellable(), request_id, limits)
        return JSONResponse(
            (responses.cancel(response_id) or stored).wire(), headers={"x-request-id": request_id, **limits}
        )

    async def forget_responses(_: Request) -> Response:
        return JSONResponse({"forgotten": responses.forget_all()})

    return [
        Route("/v1/responses", create_response, methods=["POST"]),
        Route("/v1/responses/{response_id}", retrieve_response, methods=["GET"]),
        Route("/v1/responses/{response_id}/cancel", cancel_response, methods=["POST"]),
        Route("/_sim/responses", forget_responses, methods=["DELETE"]),
    ]


async def _event_stream(simulator: Simulator, answer: Answer, model: str, include_usage: bool) -> AsyncIterator[str]:
    """The SSE body of a streamed completion: role chunk, content (or refusal) chunks, finish chunk, usage, [DONE]."""
    completion_id = new_completion_id()
    created = int(time.time())
    delivered = False

    def event(delta: dict[str, Any] | None, **extra: Any) -> str:
        body = chunk(
            completion_id=completion_id,
            created=created,
            model=model,
            delta=delta,
            include_usage=include_usage,
            service_tier=answer.service_tier,
            **extra,
        )
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    try:
        # A hang sends the headers (already out by now) and then nothing at all.
        await asyncio.sleep(answer.hang_seconds)
        # A refusal streams as OpenAI's does: content null, the text in ``refusal`` deltas.
        field = "refusal" if answer.refused else "content"
        if answer.refused:
            yield event({"role": "assistant", "content": None, "refusal": ""})
        else:
            yield event({"role": "assistant", "content": "", "refusal": None})
        async for piece in paced_pieces(answer.content, answer.pace):
            yield event({field: piece})
        # Counted before the last chunks go out, so a client that has read [DONE] sees itself in the stats.
        simulator.delivered(answer)
        delivered = True
        yield event({}, finish_reason=answer.finish_reason)
        if include_usage:
            yield event(None, usage=answer.usage)
        yield "data: [DONE]\n\n"
    finally:
        if not delivered:
            simulator.abandoned(answer)
