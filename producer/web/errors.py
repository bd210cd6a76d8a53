"""One error shape for every HTTP answer that is not a success: `{"error": {kind, message}}`."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from producer.checks import Problem, format_loc
from producer.specs import error_problem
from producer.web.advice import for_http
from shared.errors import (
    EditQueueError,
    InvalidSpec,
    InvalidState,
    ObjectNotFound,
    SessionExists,
    TransientError,
    UnknownSession,
)

UNPARSABLE = "There was an error parsing the body"
log = logging.getLogger("editqueue.api")

RETRY_AFTER_S = 5
LOCATIONS = (("body",), ("query",), ("path",), ("header",), ("cookie",))  # FastAPI's loc heads


class FieldError(BaseModel):
    """One bad field: its path (`turns[2].image_size`) and what to do."""

    model_config = ConfigDict(extra="forbid")

    field: str
    message: str


class ErrorDetail(BaseModel):
    """What went wrong."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    message: str
    fields: list[FieldError] = []


class ErrorBody(BaseModel):
    """The body of every error answer."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


class ApiError(Exception):
    """An HTTP error raised by a route: status, kind, message and the bad fields."""

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        fields: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message
        self.fields, self.headers = list(fields), headers


def error_response(error: ApiError) -> JSONResponse:
    """The JSON answer for an ApiError."""
    body = ErrorBody(error=ErrorDetail(kind=error.kind, message=error.message, fields=error.fields))
    return JSONResponse(body.model_dump(), status_code=error.status, headers=error.headers)


def problems_error(problems: Sequence[Problem], where: str = "") -> ApiError:
    """A 422 naming every bad field, worded as the CLI words them."""
    fields = [FieldError(field=format_loc(p.loc) or "body", message=p.message) for p in problems]
    prefix = f"{where}: " if where else ""
    message = "\n".join(f"{prefix}{f.field}: {f.message}" for f in fields)
    return ApiError(422, InvalidSpec.kind, message, fields)


def from_editqueue(exc: EditQueueError) -> ApiError:
    """Our error tree as HTTP: bad input 422, unknown 404, wrong state 409, outages 503."""
    if isinstance(exc, UnknownSession):  # one wording: another tenant's session is unknown too
        return ApiError(404, exc.kind, "no such session; GET /v1/sessions lists yours")
    if isinstance(exc, ObjectNotFound):
        return ApiError(404, exc.kind, exc.message)
    if isinstance(exc, InvalidState | SessionExists):
        return ApiError(409, exc.kind, exc.message)
    if isinstance(exc, TransientError):
        headers = {"retry-after": str(RETRY_AFTER_S)}
        return ApiError(503, exc.kind, f"{exc.message}; try again", headers=headers)
    return ApiError(422, exc.kind, exc.message)


def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        where = loc[1:] if loc[:1] in LOCATIONS else loc
        problems.append(error_problem({**error, "loc": where}))  # type: ignore[typeddict-item]
    return error_response(problems_error(problems))


def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    kind = "not_found" if exc.status_code == 404 else "http_error"
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    if exc.status_code == 400 and message == UNPARSABLE:  # FastAPI's words for bad JSON
        kind, message = (
            "invalid_json",
            "the body is not JSON (or is nested too deeply); send one object",
        )
    headers = dict(exc.headers) if exc.headers else None
    return error_response(ApiError(exc.status_code, kind, message, headers=headers))


def _ours(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ApiError):
        error = exc
    else:
        assert isinstance(exc, EditQueueError)
        error = from_editqueue(exc)
    error.message = for_http(error.message, request.path_params.get("session_id"))
    return error_response(error)


def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed: %r", request.method, request.url.path, exc)
    return error_response(ApiError(500, "internal", "internal error; the server log has details"))


def install_handlers(app: FastAPI) -> None:
    """Every error answer in the one shape (validation, 404/405, ours, anything else)."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(ApiError, _ours)
    app.add_exception_handler(EditQueueError, _ours)
    app.add_exception_handler(Exception, _internal)
