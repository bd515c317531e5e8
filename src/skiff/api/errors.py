"""The one table from error categories to HTTP statuses (moby's httpstatus.FromError).

Handlers raise a skiff.errors category with Docker's message text; the wrapper in app.py
asks `status_for` for the status and answers `{"message": str(exc)}`.
"""

from __future__ import annotations

from skiff import errors

STATUS_BY_CATEGORY: tuple[tuple[type[BaseException], int], ...] = (
    (errors.NotFound, 404),
    (errors.InvalidArgument, 400),
    (errors.Conflict, 409),
    (errors.NotModified, 304),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.Unsupported, 501),
    (errors.Unavailable, 503),
)

INTERNAL = 500


def status_for(exc: BaseException) -> int:
    for category, status in STATUS_BY_CATEGORY:
        if isinstance(exc, category):
            return status
    return INTERNAL
