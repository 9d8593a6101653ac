"""Every failure becomes OpenAI's envelope with the right status. Client input never yields a 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from omnimini.protocol.errors import APIError, error_body

log = logging.getLogger(__name__)

# Names pydantic puts in an error location for union members; they are not request parameters.
_UNION_MEMBER_NAMES = {"str", "int", "float", "bool", "list", "dict", "none", "function-after",
                       "function-before", "function-wrap"}
_TAGGED_LISTS = {"messages", "content"}   # discriminated unions: pydantic adds the tag to the path


def param_name(loc: tuple[Any, ...]) -> str | None:
    """('body','messages',0,'user','content') -> 'messages[0].content' (OpenAI's style)."""
    out = ""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    prev_list: str | None = None
    skip_tag = False
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            skip_tag = prev_list in _TAGGED_LISTS
            continue
        if skip_tag:
            skip_tag = False
            continue
        if (part in _UNION_MEMBER_NAMES or "[" in part or "(" in part or part[:1].isupper()
                or part.startswith("function-")):
            continue
        out += ("." if out else "") + part
        prev_list = part
    return out or None


def _message(err: dict[str, Any], param: str | None) -> str:
    kind = err.get("type", "")
    if kind == "invalid_role":
        return err.get("msg", "Invalid role.")
    if kind == "json_invalid":
        return ("We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                "using your HTTP library correctly. The OpenAI API expects a JSON payload.)")
    if kind == "extra_forbidden":
        return f"Unrecognized request argument supplied: {param}"
    if kind == "missing" and param is None:
        return "The request body is missing: send a JSON object."
    if kind == "missing":
        return f"Missing required parameter: '{param}'."
    if kind == "too_short" and err.get("input") == []:
        return f"Invalid '{param}': empty array. Expected an array with minimum length 1."
    if param is None:
        return f"Invalid request body: {err.get('msg')}."
    return f"Invalid value for '{param}': {err.get('msg')}."


def validation_error(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    # Report the most useful error first: a missing or unknown field beats type noise from unions.
    errors = sorted(errors, key=lambda e: {"json_invalid": 0, "missing": 1, "extra_forbidden": 2}.get(e["type"], 3))
    err = errors[0] if errors else {"msg": "invalid request"}
    param = param_name(tuple(err.get("loc", ())))
    if err.get("type") == "json_invalid":
        param = None
    elif err.get("type") == "invalid_role":
        param = f"{param}.role"
    code = {"extra_forbidden": "unknown_parameter", "missing": "missing_required_parameter",
            "json_invalid": None}.get(err.get("type", ""), "invalid_value")
    return JSONResponse(error_body(_message(err, param), "invalid_request_error", param, code),
                        status_code=400)


def install(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            msg = f"Invalid URL ({request.method} {request.url.path})"
        elif exc.status_code == 405:
            msg = f"Method {request.method} is not allowed for {request.url.path}"
        else:
            msg = str(exc.detail)
        return JSONResponse(error_body(msg, "invalid_request_error", None, None),
                            status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("The server had an error while processing your request.",
                                       "server_error", None, None), status_code=500)
