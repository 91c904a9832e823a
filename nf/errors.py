"""The one error tree. Every error the NF answers with is an ``NfError``.

Each carries the HTTP status and the 3GPP application error ``cause`` (TS 29.500 table
5.2.7.2-1 and the service specifications). ``nf.sbi.problem`` renders them once, as
``application/problem+json`` ProblemDetails (TS 29.571). Foreign exceptions (PyMongo,
h2, json) are translated where they arise (the adapters), never leaked upward.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class InvalidParam:
    """One offending field: a JSON pointer-ish path and why it was rejected."""

    param: str
    reason: str


@dataclass
class NfError(Exception):
    """Root of every error the NF reports to a peer."""

    detail: str
    status: int = 500
    cause: str = "SYSTEM_FAILURE"
    title: str = "Internal error"
    invalid_params: list[InvalidParam] = field(default_factory=list)
    retry_after_s: int | None = None
    # Methods the resource does support (the ``Allow`` header of a 405).
    allow: tuple[str, ...] = ()
    # The ``WWW-Authenticate`` challenge of a 401/403 about an access token (RFC 6750).
    www_authenticate: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.cause}: {self.detail}"


class BadRequest(NfError):
    def __init__(self, detail: str, *, cause: str = "INVALID_MSG_FORMAT",
                 invalid_params: list[InvalidParam] | None = None) -> None:
        super().__init__(detail, 400, cause, "Bad request", invalid_params or [])


class MandatoryIeMissing(BadRequest):
    def __init__(self, detail: str, invalid_params: list[InvalidParam] | None = None) -> None:
        super().__init__(detail, cause="MANDATORY_IE_MISSING", invalid_params=invalid_params)


class Unauthorized(NfError):
    def __init__(self, detail: str, *, www_authenticate: str | None = None) -> None:
        super().__init__(detail, 401, "UNAUTHORIZED", "Unauthorized",
                         www_authenticate=www_authenticate)


class Forbidden(NfError):
    def __init__(self, detail: str, *, cause: str = "FORBIDDEN",
                 www_authenticate: str | None = None) -> None:
        super().__init__(detail, 403, cause, "Forbidden", www_authenticate=www_authenticate)


class NotFound(NfError):
    def __init__(self, detail: str, *, cause: str = "RESOURCE_NOT_FOUND") -> None:
        super().__init__(detail, 404, cause, "Not found")


class MethodNotAllowed(NfError):
    def __init__(self, detail: str, *, allow: tuple[str, ...] = ()) -> None:
        super().__init__(detail, 405, "METHOD_NOT_ALLOWED", "Method not allowed", allow=allow)


class Conflict(NfError):
    def __init__(self, detail: str, *, cause: str = "RESOURCE_CONFLICT") -> None:
        super().__init__(detail, 409, cause, "Conflict")


class PayloadTooLarge(NfError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 413, "PAYLOAD_TOO_LARGE", "Payload too large")


class UnsupportedMediaType(NfError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type")


class RequestTimeout(NfError):
    """The peer did not finish sending its request body in time."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, 408, "INVALID_MSG_FORMAT", "Request timeout")


class Unprocessable(NfError):
    def __init__(self, detail: str, *, cause: str = "SEMANTIC_ERROR") -> None:
        super().__init__(detail, 422, cause, "Unprocessable request")


class HttpVersionNotSupported(NfError):
    """An HTTP/1.x request on a port that serves HTTP/2 only (the SBI, TS 29.500)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, 505, "HTTP_VERSION_NOT_SUPPORTED",
                         "HTTP version not supported")


class Congestion(NfError):
    def __init__(self, detail: str, *, retry_after_s: int = 1) -> None:
        super().__init__(detail, 503, "NF_CONGESTION", "Service unavailable",
                         retry_after_s=retry_after_s)


class StoreUnavailable(NfError):
    """The database could not be reached or answered with an error."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, 503, "NF_SERVICE_FAILURE", "Service unavailable",
                         retry_after_s=1)


class ConfigError(Exception):
    """Bad configuration, found before anything starts. Not an ``NfError``: no peer sees it."""
