"""Why a layer was refused.

InvalidArgument
└── LayerError        any layer we will not apply
    ├── CorruptLayer  truncated, bad compression, bad tar header
    └── UnsafeLayer   would write outside its folder (.., absolute, escapes)
"""

from __future__ import annotations

from skiff.errors import InvalidArgument


class LayerError(InvalidArgument):
    pass


class CorruptLayer(LayerError):
    pass


class UnsafeLayer(LayerError):
    pass
