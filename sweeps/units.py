"""Unit strings in sweep configs ("3.35 TB/s", "80 GB", "989 TFLOPS", "2.5 $/h", "128k"), parsed by pint.

A small private registry (SI and binary prefixes, bytes, FLOP, dollars, tokens) so that a
byte is its own dimension: "3 GB" given for a bandwidth is an error, not a silent 3e9 B/s.
Every parser returns a float in SI units (bytes/s, FLOP/s, bytes, $/h, seconds, tokens).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import pint

_DEFINITIONS = [
    "kilo- = 1e3 = k-", "mega- = 1e6 = M-", "giga- = 1e9 = G-", "tera- = 1e12 = T-",
    "peta- = 1e15 = P-", "exa- = 1e18 = E-", "milli- = 1e-3 = m-", "micro- = 1e-6 = u- = µ-",
    "nano- = 1e-9 = n-", "kibi- = 2**10 = Ki-", "mebi- = 2**20 = Mi-", "gibi- = 2**30 = Gi-",
    "tebi- = 2**40 = Ti-",
    "second = [time] = s = sec = seconds", "minute = 60 * second = min = minutes",
    "hour = 3600 * second = h = hr = hours", "day = 24 * hour",
    "byte = [information] = B = bytes", "bit = byte / 8 = b = bits",
    "flop = [flop] = FLOP = flops_", "FLOPS = flop / second = flops = FLOP_per_s",
    "OPS = FLOPS = TOPS_", "dollar = [currency] = USD = usd = dollars",
    "token = [token] = tok = tokens",
]


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    ureg = pint.UnitRegistry(None)
    for d in _DEFINITIONS:
        ureg.define(d)
    return ureg


#: kind → (pint unit of the SI value, human description, example)
KINDS: dict[str, tuple[str, str, str]] = {
    "bandwidth": ("byte / second", "a bandwidth", "3.35 TB/s"),
    "bytes": ("byte", "a size in bytes", "80 GB"),
    "flops": ("FLOPS", "a compute rate", "989 TFLOPS"),
    "price": ("dollar / hour", "a price per hour", "2.5 $/h"),
    "time": ("second", "a time", "50 ms"),
    "tokens": ("token", "a number of tokens", "128k"),
    "number": ("", "a number", "300"),
}

_SUFFIX = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKMGT])\s*$")
_TOKEN_PREFIX = {"k": "k", "K": "k", "M": "M", "G": "G", "T": "T"}


def parse(value: object, kind: str, *, positive: bool = True, allow_zero: bool = False,
          allow_inf: bool = False) -> float:
    """A config value of ``kind`` as a float in SI units; ValueError says what was expected."""
    unit, what, example = KINDS[kind]
    expected = f"expected {what} such as {example!r}"
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        raise ValueError(f"{expected}, found {value!r}")
    if isinstance(value, int | float):
        x = float(value)
    elif isinstance(value, str):
        text = value.strip().replace("$", " USD ").replace("/hour", "/h")
        if text.lower() in ("inf", "infinity", "none"):
            x = math.inf
        else:
            m = _SUFFIX.match(text)
            if m and kind in ("tokens", "number"):
                text = f"{m.group(1)} {_TOKEN_PREFIX[m.group(2)]}tok"
            ureg = registry()
            try:
                q = ureg.Quantity(text)
            except Exception:
                raise ValueError(f"{expected}, found {value!r} (not a quantity)") from None
            if kind == "number" and not q.dimensionless:
                if q.dimensionality == ureg.token.dimensionality:
                    q = q.to("token").magnitude * ureg.dimensionless
                else:
                    raise ValueError(f"{expected}, found {value!r} (has units {q.units})")
            if kind == "number":
                x = float(q.to("").magnitude)
            elif q.dimensionless:
                x = float(q.magnitude)  # a bare number is taken in SI units
            else:
                try:
                    x = float(q.to(unit).magnitude)
                except pint.DimensionalityError:
                    raise ValueError(
                        f"{expected}, found {value!r} (units of {q.dimensionality}, not {what})"
                    ) from None
    else:
        raise ValueError(f"{expected}, found {value!r}")
    if math.isnan(x):
        raise ValueError(f"{expected}, found NaN")
    if math.isinf(x) and not allow_inf:
        raise ValueError(f"{expected} (finite), found {value!r}")
    if positive and (x < 0 or (x == 0 and not allow_zero)):
        raise ValueError(f"{expected} {'≥ 0' if allow_zero else '> 0'}, found {value!r}")
    return x
