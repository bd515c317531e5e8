"""Error categories shared by every layer.

Code raises the category that says what went wrong; the API edge maps each
category to an HTTP status in one table (as moby's httpstatus.FromError does):

    SkiffError
    ├── NotFound          404
    ├── InvalidArgument   400
    ├── Conflict          409
    ├── NotModified       304
    ├── Unauthorized      401
    ├── Forbidden         403
    ├── Unsupported       501
    └── Unavailable       503
    anything else         500
"""

from __future__ import annotations


class SkiffError(Exception):
    """Base of every error skiff raises on purpose."""


class NotFound(SkiffError):
    pass


class InvalidArgument(SkiffError):
    pass


class Conflict(SkiffError):
    pass


class NotModified(SkiffError):
    pass


class Unauthorized(SkiffError):
    pass


class Forbidden(SkiffError):
    pass


class Unsupported(SkiffError):
    pass


class Unavailable(SkiffError):
    pass
