"""Query parameters as the API server reads them."""

from __future__ import annotations

from typing import Any


def query_bool(query: Any, name: str) -> bool:
    """A boolean query parameter as the API server reads it (apimachinery runtime
    Convert_Slice_string_To_bool): absent is false; "0" and "false" (any case) are
    false; any other value, even empty, is true."""
    if name not in query:
        return False
    value = str(query.get(name))
    return not (value == "0" or value.lower() == "false")
