"""The HTTP surface of the Files API (upload, retrieve, content, delete) and the Batch API (create,
retrieve, cancel, list), plus ``DELETE /_sim/batches``. Routes only translate HTTP to the stores."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llm_simulator import batch_refusals, refusals
from llm_simulator.batches import CHAT_ENDPOINT, BatchCreateRequest, BatchStore
from llm_simulator.edge import error_response, json_body, unauthorised
from llm_simulator.files import FileStore, uploaded
from llm_simulator.protocol import ApiError, new_request_id
from llm_simulator.simulator import Simulator

__all__ = ["files_and_batches_routes"]

# The form around a file adds a few hundred bytes; anything past this is refused unread.
_MAX_UPLOAD_BYTES = batch_refusals.MAX_INPUT_BYTES + 1024 * 1024


def files_and_batches_routes(simulator: Simulator) -> list[Route]:
    files = FileStore(lambda: simulator.config.files_kept_bytes)
    batches = BatchStore(simulator, files)

    def answer(body: object, request_id: str) -> Response:
        if isinstance(body, ApiError):
            return error_response(body, request_id)
        return JSONResponse(body, headers={"x-request-id": request_id})

    async def create_file(request: Request) -> Response:
        request_id = new_request_id()
        if (denied := unauthorised(request)) is not None:
            return error_response(denied, request_id)
        body = bytearray()
        async for piece in request.stream():
            body.extend(piece)
            if len(body) > _MAX_UPLOAD_BYTES:
                return error_response(batch_refusals.file_too_large(len(body)), request_id)
        stored = uploaded(request.headers.get("content-type", ""), bytes(body))
        return answer(stored if isinstance(stored, ApiError) else files.add(stored).wire(), request_id)

    async def retrieve_file(request: Request) -> Response:
        request_id = new_request_id()
        if (denied := unauthorised(request)) is not None:
            return error_response(denied, request_id)
        file_id = request.path_params["file_id"]
        stored = files.get(file_id)
        return answer(batch_refusals.file_not_found(file_id) if stored is None else stored.wire(), request_id)

    async def file_content(request: Request) -> Response:
        request_id = new_request_id()
        if (denied := unauthorised(request)) is not None:
            return error_response(denied, request_id)
        file_id = request.path_params["file_id"]
        if (stored := files.get(file_id)) is None:
            return error_response(batch_refusals.file_not_found(file_id), request_id)
        return Response(stored.content, media_type="application/octet-stream", headers={"x-request-id": request_id})

    async def delete_file(request: Request) -> Response:
        request_id = new_request_id()
        if (denied := unauthorised(request)) is not None:
            return error_response(denied, request_id)
        file_id = request.path_params["file_id"]
        if not files.delete(file_id):
            return error_response(batch_refusals.file_not_found(file_id), request_id)
        return answer({"id": file_id, "object": "file", "deleted": True}, request_id)

    async def create_batch(request: Request) -> Response:
        request_id = new_request_id()
        if (denied := unauthorised(request)) is not None:
            return error_response(denied, request_id)
        create = await json_body(request, "create_batch", BatchCreateRequest)
        if isinstance(create, ApiError):
            return error_response(create, request_id)
        if create.endpoint != CHAT_ENDPOINT:
            return error_response(batch_refusals.endpoint_not_simulated(create.endpoint), request_id)
        return answer(batches.create(create).wire(), request_id)

    async def retrieve_batch(request: Request) -> Response:
        request_id = new_request_id()
        if (denied := unauthorised(request)) is not None:
            return error_response(denied, request_id)
        batch_id = request.path_params["batch_id"]
        stored = batches.get(batch_id)
        return answer(batch_refusals.batch_not_found(batch_id) if stored is None else stored.wire(), request_id)

    async def cancel_batch(request: Request) -> Response:
        request_id = new_request_id()
        if (denied := unauthorised(request)) is not None:
            return error_response(denied, request_id)
        cancelled = batches.cancel(request.path_params["batch_id"])
        return answer(cancelled if isinstance(cancelled, ApiError) else cancelled.wire(), request_id)

    async def list_batches(request: Request) -> Response:
        request_id = new_request_id()
        if (denied := unauthorised(request)) is not None:
            return error_response(denied, request_id)
        raw_limit = request.query_params.get("limit", "20")
        if not raw_limit.isdigit():
            return error_response(refusals.invalid_type("limit", ["an integer"], "a string"), request_id)
        limit = int(raw_limit)
        if not 1 <= limit <= 100:
            bound = 1 if limit < 1 else 100
            return error_response(
                refusals.out_of_range("limit", limit, bound, below=limit < 1, integer=True), request_id
            )
        return answer(batches.listed(request.query_params.get("after"), limit), request_id)

    async def forget_batches(_: Request) -> Response:
        return JSONResponse({"forgotten_batches": batches.forget_all(), "forgotten_files": files.forget_all()})

    return [
        Route("/v1/files", create_file, methods=["POST"]),
        Route("/v1/files/{file_id}", retrieve_file, methods=["GET"]),
        Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
        Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
        Route("/v1/batches", create_batch, methods=["POST"]),
        Route("/v1/batches", list_batches, methods=["GET"]),
        Route("/v1/batches/{batch_id}", retrieve_batch, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
        Route("/_sim/batches", forget_batches, methods=["DELETE"]),
    ]
