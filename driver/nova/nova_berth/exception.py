"""Errors of the berthd REST client.

One class per way a call can fail, so the driver can decide what each means for Nova
(a 404 is InstanceNotFound, a 409 an invalid state, ...) without parsing messages. They
carry berthd's own message, which names the field or the state at fault.
"""


class BerthError(Exception):
    """A berthd call failed. `status` is the HTTP status (None: no answer); `kind` the
    machine-readable kind of berthd's error body ("not_found", "glance_unauthorized", ...;
    None when it had none)."""

    status = None

    def __init__(self, message, status=None, method=None, path=None, kind=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.method = method
        self.path = path
        self.kind = kind

    def __str__(self):
        where = f"{self.method} {self.path}: " if self.method else ""
        code = f" (HTTP {self.status})" if self.status else ""
        return f"berthd {where}{self.message}{code}"


class BerthConnectionError(BerthError):
    """berthd did not answer: refused, reset, or a timeout."""


class BerthTimeout(BerthConnectionError):
    """berthd took longer than the configured timeout."""


class BerthBadRequest(BerthError):
    status = 400


class BerthUnauthorized(BerthError):
    status = 401


class BerthNotFound(BerthError):
    status = 404


class BerthConflict(BerthError):
    """409: the instance's state forbids the action, or it already exists."""

    status = 409


class BerthTooLarge(BerthError):
    status = 413


class BerthInsufficientStorage(BerthError):
    status = 507


class BerthNotSupported(BerthError):
    """501, or a route this berthd does not have (an older berthd)."""

    status = 501


class BerthServerError(BerthError):
    """5xx: berthd failed; its log has the details."""

    status = 500


class BerthBadResponse(BerthError):
    """berthd answered something that is not the JSON its API promises."""


_BY_STATUS = {
    400: BerthBadRequest,
    401: BerthUnauthorized,
    403: BerthUnauthorized,
    404: BerthNotFound,
    409: BerthConflict,
    413: BerthTooLarge,
    501: BerthNotSupported,
    507: BerthInsufficientStorage,
}


def for_status(status):
    """The exception class for an HTTP error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return BerthServerError
    return BerthError
