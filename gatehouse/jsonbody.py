"""Strict JSON for request bodies: what ``json.loads`` accepts, less what would only fail later.

A body is refused (``JSONBodyError``, a ``ValueError`` whose message says what is wrong) when
it is not UTF-8, is not JSON, nests arrays and objects deeper than ``MAX_DEPTH``, holds
``NaN``/``Infinity`` or a number too large for a float, or holds a lone UTF-16 surrogate
(``"\\ud800"``): no database stores one and no UTF-8 answer can echo it. On request, a NUL
(``"\\u0000"``) in any string is refused as well.

The depth is measured on the text before parsing, without recursion, so a body nested
thousands deep costs a scan instead of a ``RecursionError``. Every extra check has a fast
path that keeps ordinary bodies at about the cost of ``json.loads``: the depth is measured
only when the body has more than ``MAX_DEPTH`` opening brackets in all, and strings are
looked at only when the text holds a ``\\uD800``-``\\uDFFF`` (or ``\\u0000``) escape. Pure
Python: no Django.
"""

import json
import math
import re
from itertools import accumulate, repeat
from typing import Any

MAX_DEPTH = 64

_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# What JSON holds outside its strings besides brackets (anything else is not JSON: it counts 0).
_OUTSIDE_STRINGS = str.maketrans(dict.fromkeys(" \t\n\r,:0123456789.-+eEtrufalsn"))
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONBodyError(ValueError):
    """The body is not JSON this server accepts; the message says why."""


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH, allow_nul: bool = True) -> Any:
    """The JSON value of ``data`` (UTF-8 when bytes), or ``JSONBodyError``. With
    ``allow_nul=False`` a NUL (``\\u0000``) in any string is refused too, for bodies whose
    strings reach the database without a form or serializer field to check them."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise JSONBodyError(f"The body is not UTF-8: {error}.") from error
    else:
        text = data
    if nesting_exceeds(text, max_depth):
        raise JSONBodyError(f"JSON nested deeper than {max_depth} levels.")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError as error:  # not reached below the depth limit; never a 500
        raise JSONBodyError(f"JSON nested deeper than {max_depth} levels.") from error
    except ValueError as error:
        raise JSONBodyError(f"JSON parse error - {error}") from error
    surrogates = _SURROGATE_ESCAPE.search(text) is not None
    nul = not allow_nul and "\\u0000" in text
    if surrogates or nul:
        _check_strings(value, surrogates=surrogates, nul=nul)
    return value


def nesting_exceeds(text: str, max_depth: int) -> bool:
    """Whether the arrays and objects of ``text`` nest deeper than ``max_depth``: brackets
    inside strings do not count. Linear, and without recursion, whatever the text."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    # In JSON a backslash appears only in strings, starting an escape: once the escaped
    # backslashes and then the escaped quotes are gone, every other piece between quotes is
    # outside the strings. (Text that is not JSON may be measured wrong; json.loads refuses it.)
    if "\\" in text:
        text = text.replace("\\\\", "").replace('\\"', "")
    brackets = "".join(text.split('"')[::2]).translate(_OUTSIDE_STRINGS)
    return max(accumulate(map(_STEP.get, brackets, repeat(0))), default=0) > max_depth


def _check_strings(value: Any, *, surrogates: bool, nul: bool) -> None:
    """Every key and string of ``value``, without recursion (it is at most ``max_depth``
    deep, but may be wide)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if nul and "\x00" in item:
                raise JSONBodyError("JSON strings may not hold NUL characters (\\u0000).")
            if surrogates:
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    raise JSONBodyError(
                        "JSON strings may not hold lone surrogates "
                        "(\\ud800-\\udfff without their pair)."
                    ) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range for a number")
    return number
