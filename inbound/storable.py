"""Text from outside made storable, once, where it enters processing (inbound.processing).

PostgreSQL's text types take every Unicode character but NUL, and a lone surrogate (what
invalid UTF-8 leaves behind after surrogateescape decoding, or a JSON "\\udc80" escape) cannot
even be encoded to send it. Either one in a subject, an address or a diagnostic would make the
whole message fail to store; each becomes U+FFFD, which shows that something was there. A pure
module: it imports no models.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, TypeVar, cast

T = TypeVar("T")

REPLACEMENT = "\ufffd"
_REFUSED = re.compile("[\x00\ud800-\udfff]")


def storable(value: T) -> T:
    """The value with every string in it storable: in tuples, lists, dicts and dataclasses too."""
    return cast(T, _storable(value))


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return _REFUSED.sub(REPLACEMENT, value)
    if type(value) in (tuple, list):
        return type(value)(_storable(item) for item in value)
    if type(value) is dict:
        return {_storable(key): _storable(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return dataclasses.replace(
            value, **{f.name: _storable(getattr(value, f.name)) for f in fields if f.init}
        )
    return value
