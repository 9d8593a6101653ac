"""OpenAI's error envelope: {"error": {"message", "type", "param", "code"}}.

Every failure a client can cause is raised as an `APIError` somewhere below the server; the server
turns it into this envelope with the status it carries. Types and codes follow OpenAI's own.
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    status: int = 400
    type: str = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 status: int | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}
        if status is not None:
            self.status = status

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


class InvalidRequest(APIError):
    """400: the request is well-formed JSON but asks for something invalid."""


class NotFound(APIError):
    status = 404


class ModelNotFound(NotFound):
    def __init__(self, model: str, param: str | None = "model"):
        super().__init__(
            f"The model `{model}` does not exist or you do not have access to it.",
            param=param, code="model_not_found")


class ContextLengthExceeded(InvalidRequest):
    def __init__(self, message: str, param: str = "messages"):
        super().__init__(message, param=param, code="context_length_exceeded")


class Unsupported(InvalidRequest):
    """400 for an OpenAI parameter or value that this server does not implement (yet)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message, param=param, code="unsupported_parameter")


class RateLimitExceeded(APIError):
    """429 with `Retry-After`, as OpenAI answers an exhausted rate limit or a full queue.

    OpenAI's `type` names the limit that ran out: "requests" (RPM) or "tokens" (TPM).
    """

    status = 429

    def __init__(self, message: str, *, retry_after: float, limit_type: str = "requests",
                 code: str = "rate_limit_exceeded", headers: dict[str, str] | None = None):
        super().__init__(message, code=code,
                         headers={"retry-after": str(max(1, round(retry_after + 0.499))), **(headers or {})})
        self.type = limit_type
        self.retry_after = retry_after


class Overloaded(APIError):
    status = 503
    type = "server_error"


class ServerError(APIError):
    status = 500
    type = "server_error"


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}
