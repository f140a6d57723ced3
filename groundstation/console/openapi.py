"""The OpenAPI 3.1 description of the console's API, built from its route table."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["openapi_schema"]

_ERROR = {"description": "error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}


def openapi_schema(routes: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler, summary, details in routes:
        params: list[dict[str, Any]] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in re.findall(r"\{(\w+)\}", path)
        ]
        params += [
            {"name": name, "in": "query", "required": False, "schema": {"type": kind}}
            for name, kind in details.get("query", {}).items()
        ]
        content_type = "text/plain" if details.get("text") else "application/json"
        op: dict[str, Any] = {
            "operationId": handler.__name__,
            "summary": summary,
            "tags": [details["tag"]],
            "responses": {
                "200" if method == "GET" else "202" if "commands" in path or path == "/api/jobs"
                else "200": {"description": "ok", "content": {content_type: {"schema": {}}}},
                "400": _ERROR,
                "404": _ERROR,
            },
        }
        if params:
            op["parameters"] = params
        if details.get("operator"):
            op["security"] = [{"operator": []}]
            op["responses"]["403"] = _ERROR
        if "body" in details:
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": details["body"]}}}
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Orbital data centre operations console",
            "version": "1",
            "description": "Nodes, telemetry, jobs, alarms and telecommands of a running "
                           "constellation. Times are mission seconds (POSIX). Live changes "
                           "are pushed on the WebSocket /ws.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"operator": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error"],
                                  "properties": {"error": {"type": "string"}}}},
        },
    }
