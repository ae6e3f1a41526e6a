"""The API's OpenAPI document: made by the FastAPI app, served by both apps.

Every ``$ref`` in it resolves inside it: the problem bodies are components, as the
request and response models are.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic.json_schema import models_json_schema

from examples.common.models import Problem

REF = "#/components/schemas/{model}"
PROBLEM_REF = {"$ref": REF.format(model="Problem")}


def problem_schemas() -> dict[str, Any]:
    """``Problem`` and the models it uses, as OpenAPI components."""
    _, schemas = models_json_schema([(Problem, "serialization")], ref_template=REF)
    found: dict[str, Any] = schemas["$defs"]
    return found


def with_problems(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the problem schemas among its components."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(problem_schemas())
    return document


@functools.cache
def document() -> dict[str, Any]:
    """The FastAPI app's document, for a host that is not the FastAPI app (Flask)."""
    from examples.common.settings import Settings
    from examples.fastapi_app.main import create_app

    return create_app(Settings()).openapi()
