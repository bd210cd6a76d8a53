"""Google-shaped API errors (`{"error": {code, message, status, details}}`)."""

from __future__ import annotations

from typing import Any

JsonDict = dict[str, Any]

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"
QUOTA_FAILURE_TYPE = "type.googleapis.com/google.rpc.QuotaFailure"
HELP_TYPE = "type.googleapis.com/google.rpc.Help"
SERVICE = "generativelanguage.googleapis.com"


class ApiError(Exception):
    """An error response the emulator sends instead of a generation."""

    def __init__(
        self, code: int, status: str, message: str, details: list[JsonDict] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.details = details or []

    def body(self) -> JsonDict:
        """The JSON body Google sends for this error."""
        error: JsonDict = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid_argument(message: str) -> ApiError:
    """A 400 INVALID_ARGUMENT with Google's wording."""
    return ApiError(400, "INVALID_ARGUMENT", message)


def error_info(reason: str) -> JsonDict:
    """An ErrorInfo detail for the Generative Language service."""
    return {
        "@type": ERROR_INFO_TYPE,
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": SERVICE},
    }


def key_missing() -> ApiError:
    """The 403 Google sends when no API key came with the call."""
    message = (
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API."
    )
    return ApiError(403, "PERMISSION_DENIED", message, [error_info("CONSUMER_INVALID")])


def key_invalid() -> ApiError:
    """The 400 Google sends for a wrong API key (the key itself is never echoed)."""
    message = "API key not valid. Please pass a valid API key."
    return ApiError(400, "INVALID_ARGUMENT", message, [error_info("API_KEY_INVALID")])


def not_found(path: str) -> ApiError:
    """A 404 for a path the emulator does not serve."""
    return ApiError(404, "NOT_FOUND", f"The requested URL {path} was not found on this server.")
