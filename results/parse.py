"""Parsing of human-typed quantities on the command line: ``32k``, ``50ms``, ``4.8T``, ``1..8192``.

Token counts use binary suffixes (``32k`` = 32 768 tokens, ``1M`` = 1 048 576),
as context lengths are quoted; every other quantity uses decimal SI suffixes
(``4.8T`` bytes/s = 4.8e12). Pure Python: no jax, no numpy at import.
"""

from __future__ import annotations

import math
import re

_DECIMAL = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9, "t": 1e12, "p": 1e15, "e": 1e18}
_BINARY = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_TIME = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0}

_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


class ParseError(ValueError):
    """A value the user typed could not be read."""


def number(text: str | float | int) -> float:
    """A number with an optional decimal SI suffix: ``4.8T`` → 4.8e12, ``37B`` → 3.7e10, ``inf``."""
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip().replace("_", "").replace(",", "")
    if s.lower() in ("inf", "+inf", "infinity", "none"):
        return math.inf
    m = re.fullmatch(rf"({_NUM})\s*([a-zA-Z]?)", s)
    if not m or m.group(2).lower() not in _DECIMAL:
        raise ParseError(f"cannot read {text!r} as a number (examples: 4.8e12, 4.8T, 37B, 0.5)")
    return float(m.group(1)) * _DECIMAL[m.group(2).lower()]


def tokens(text: str | float | int) -> float:
    """A token count with a binary suffix: ``32k`` → 32768, ``1M`` → 1048576, ``1024``."""
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip().replace("_", "").replace(",", "")
    m = re.fullmatch(rf"({_NUM})\s*([kKmMgG]?)", s)
    if not m:
        raise ParseError(f"cannot read {text!r} as a token count (examples: 1024, 32k, 128K, 1M)")
    return float(m.group(1)) * _BINARY[m.group(2).lower()]


def seconds(text: str | float | int) -> float:
    """A duration: ``50ms`` → 0.05, ``0.05`` (seconds), ``20us``; ``inf``/``none`` → no target."""
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip().replace(" ", "")
    if s.lower() in ("inf", "none", ""):
        return math.inf
    m = re.fullmatch(rf"({_NUM})([a-zµ]*)", s, flags=re.IGNORECASE)
    if not m or m.group(2).lower() not in _TIME:
        raise ParseError(f"cannot read {text!r} as a duration (examples: 50ms, 0.05s, 200us)")
    return float(m.group(1)) * _TIME[m.group(2).lower()]


def values(text: str, one=number) -> list[float]:
    """One value, a comma list, a range ``lo..hi`` (13 log-spaced points) or ``lo..hi/n`` (n
    log-spaced points), or ``lo:hi:step`` (linear, both ends included when on the step)."""
    s = str(text).strip()
    if "," in s:
        return [one(p) for p in s.split(",") if p.strip()]
    m = re.fullmatch(r"(.+?)\.\.(.+?)(?:/(\d+))?", s)
    if m:
        lo, hi = one(m.group(1)), one(m.group(2))
        n = int(m.group(3) or 13)
        if lo <= 0 or hi <= 0 or n < 2:
            raise ParseError(f"log range {text!r} needs positive ends and at least 2 points")
        r = (hi / lo) ** (1.0 / (n - 1))
        return [lo * r**i for i in range(n - 1)] + [hi]
    if s.count(":") == 2:
        lo, hi, step = (one(p) for p in s.split(":"))
        if step <= 0:
            raise ParseError(f"range {text!r} needs a positive step")
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1
        return [lo + i * step for i in range(n)]
    return [one(s)]


def key_value(text: str) -> tuple[str, str]:
    """``key=value`` → (key, value)."""
    if "=" not in text:
        raise ParseError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v.strip()


def si(x: float, unit: str = "", digits: int = 3) -> str:
    """A number for people: 4.8e12 → ``4.8 T``, 0.0123 → ``12.3 m``; NaN/inf spelled out."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return ("∞" if x > 0 else "−∞") + (f" {unit}" if unit else "")
    if x == 0:
        return f"0 {unit}".strip()
    prefixes = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""),
                (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")]
    scale, p = prefixes[-1]
    for scale, p in prefixes:  # noqa: B007 (the loop finds the prefix)
        if abs(x) >= scale * 0.9995:
            break
    text = f"{x / scale:.{digits}g}"
    return f"{text} {p}{unit}".strip()
