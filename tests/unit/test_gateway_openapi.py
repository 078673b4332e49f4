"""The committed OpenAPI document is the one the code serves, and it documents every error."""

import json

from services.gateway.__main__ import OPENAPI_PATH, render_openapi


def test_the_committed_openapi_document_matches_the_code() -> None:
    # On failure: `make openapi`, then review and commit the diff (an API change shows up in review).
    assert OPENAPI_PATH.read_text() == render_openapi()


def test_every_operation_documents_401_and_the_one_error_shape() -> None:
    document = json.loads(render_openapi())
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert len(operations) >= 8
    for operation in operations:
        assert "401" in operation["responses"], operation["operationId"]
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (operation["operationId"], status)
