"""The one parser of human-typed quantities: configs, the command line and observation files.

``parse(value, kind)`` reads ``"3.35 TB/s"``, ``"80 GB"``, ``"989 TFLOPS"``, ``"2.5 $/h"``,
``"50 ms"``, ``"128k"`` and returns a float in SI units (bytes/s, bytes, FLOP/s, $/h, seconds,
tokens, plain numbers).

Prefixes, one rule everywhere:

- **token counts** (context, ISL/OSL, windows) use binary suffixes as engines quote them:
  ``k`` = 1024, ``M`` = 1024², ``G`` = 1024³ (``32k`` = 32 768 tokens, ``1M`` = 1 048 576);
- **every other quantity** uses decimal SI prefixes (``4.8T`` = 4.8e12, ``37B`` = 3.7e10,
  ``80 GB`` = 8e10 bytes); ``GiB``/``TiB`` are binary where the unit says so.

Strings with units are read by pint from a small private registry (a byte is its own dimension,
so ``3 GB`` given for a bandwidth is an error), but only after a whitelist check: one leading
number followed by unit words — pint never evaluates an expression (``10**10**10 B/s`` is
refused at once). Plain numbers and suffixed counts never import pint.

:func:`check` applies a *domain* (sign, bounds, integrality), declared once per knob in
:data:`rooflax.core.quantities.DOMAINS`.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

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

#: Longest text the parser reads (anything longer is not a quantity someone typed).
MAX_CHARS = 64


class ParseError(ValueError):
    """A value the user typed could not be read, or is outside its domain."""


@lru_cache(maxsize=1)
def registry():
    """The private pint registry (imported on first use only)."""
    import pint

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

_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9, "T": 1e12, "P": 1e15,
            "E": 1e18}
_BINARY = {"": 1.0, "k": 1024.0, "K": 1024.0, "M": 1024.0**2, "G": 1024.0**3}
_COUNT = re.compile(rf"({_NUM})\s*([kKMGBTPE]?)")
_TOKENS = re.compile(rf"({_NUM})\s*([kKMG]?)\s*(?:tok|tokens?)?")
#: what may follow the number in a string with units: unit words, '/', '$', single '*'
_UNIT_TAIL = re.compile(r"[A-Za-zµ$/ _]*(?:\*[A-Za-zµ$/ _]+)*")
_INF = ("inf", "+inf", "infinity", "none")


def _found(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _with_units(text: str, kind: str, expected: str) -> float:
    """A string with units through pint, after the whitelist check (no expressions)."""
    m = re.match(_NUM, text)
    tail = text[m.end():] if m else text
    if m is None or not _UNIT_TAIL.fullmatch(tail) or "**" in tail:
        raise ParseError(f"{expected}, found {_found(text)} (not a number with units)")
    text = text.replace("$", " USD ").replace("/hour", "/h")
    ureg = registry()
    import pint

    try:
        q = ureg.Quantity(text)
    except Exception:
        raise ParseError(f"{expected}, found {_found(text)} (unknown unit)") from None
    unit = KINDS[kind][0]
    if q.dimensionless:
        return float(q.magnitude)
    try:
        return float(q.to(unit).magnitude)
    except pint.DimensionalityError:
        raise ParseError(f"{expected}, found {_found(text)} (units of {q.dimensionality}, "
                         f"not {KINDS[kind][1]})") from None


def _read(value: object, kind: str, expected: str) -> float:
    if isinstance(value, bool) or value is None or not isinstance(value, int | float | str):
        raise ParseError(f"{expected}, found {_found(value)}")
    if not isinstance(value, str):
        return float(value)
    text = value.strip().replace("_", "")
    if len(text) > MAX_CHARS:
        raise ParseError(f"{expected}, found {_found(value)} (longer than {MAX_CHARS} characters)")
    if text.lower() in _INF:
        return math.inf
    if kind == "tokens":
        m = _TOKENS.fullmatch(text)
        if m is None:
            raise ParseError(f"{expected}, found {_found(value)} (k = 1024 and M = 1024² tokens)")
        return float(m.group(1)) * _BINARY[m.group(2)]
    m = _COUNT.fullmatch(text)
    if m is not None and (kind == "number" or m.group(2) != "B"):  # "80 B" is bytes, not 8e10
        return float(m.group(1)) * _DECIMAL[m.group(2)]  # a bare number is in SI units
    if kind == "number":
        raise ParseError(f"{expected}, found {_found(value)} (examples: 0.5, 4.8T, 37B)")
    return _with_units(text, kind, expected)


def parse(value: object, kind: str, *, positive: bool = True, allow_zero: bool = False,
          allow_inf: bool = False, integer: bool = False, hi: float | None = None) -> float:
    """A value of ``kind`` (see :data:`KINDS`) as a float in SI units; :class:`ParseError`
    (a ValueError) says what was expected and what was found.

    Domain: finite unless ``allow_inf``; ``> 0`` (``≥ 0`` with ``allow_zero``) when
    ``positive``; ``≤ hi`` when given; a whole number when ``integer``.
    """
    unit, what, example = KINDS[kind]
    x = _read(value, kind, f"expected {what} such as {example!r}")
    lo = 0.0 if positive else None
    return check(x, what, lo=lo, lo_open=not allow_zero, hi=hi, integer=integer,
                 allow_inf=allow_inf, found=value)


def check(x: float, what: str = "a number", *, lo: float | None = None, lo_open: bool = False,
          hi: float | None = None, integer: bool = False, allow_inf: bool = False,
          found: object = None, stated: bool = False) -> float:
    """``x`` if it lies in the domain (``lo <`` or ``≤ x ≤ hi``, finite unless ``allow_inf``,
    whole when ``integer``), else :class:`ParseError` ("expected …, found …"); ``stated``: the
    words ``what`` already state the bounds."""
    shown = _found(x if found is None else found)
    if math.isnan(x):
        raise ParseError(f"expected {what}, found NaN")
    bound = None
    if math.isinf(x) and not (allow_inf and x > 0):
        bound, stated = "(finite)", False
    elif lo is not None and (x < lo or (lo_open and x == lo)):
        bound = f"{'>' if lo_open else '≥'} {lo:g}"
    elif hi is not None and x > hi:
        bound = f"≤ {hi:g}"
    elif integer and math.isfinite(x) and x != math.floor(x):
        bound = "(a whole number)"
    if bound is not None:
        raise ParseError(f"expected {what}{'' if stated else ' ' + bound}, found {shown}")
    return x


def domain(name: str) -> dict:
    """The domain of a knob or input (:data:`rooflax.core.quantities.DOMAINS`) as keyword
    arguments of :func:`check`, plus ``kind`` and ``what``."""
    from rooflax.core.quantities import DOMAINS

    kind, lo, lo_open, hi, integer, allow_inf, what = DOMAINS[name]
    return {"kind": kind, "what": what, "lo": lo, "lo_open": lo_open, "hi": hi,
            "integer": integer, "allow_inf": allow_inf}


def knob(name: str, value: object) -> float:
    """A knob's (or input's) value in its SI unit, checked against its domain
    (:data:`rooflax.core.quantities.DOMAINS`): ``knob("chips", "8")`` → 8.0."""
    d = domain(name)
    kind, what = d.pop("kind"), d.pop("what")
    x = _read(value, kind, f"expected {what}")
    return check(x, what, found=value, stated=True, **d)


# --------------------------------------------------------------------------- command-line forms
def number(text: str | float | int) -> float:
    """A number with an optional decimal SI suffix: ``4.8T`` → 4.8e12, ``37B`` → 3.7e10, ``inf``."""
    return _read(text, "number", "expected a number such as 4.8e12, 4.8T, 37B or 0.5")


def tokens(text: str | float | int) -> float:
    """A token count with a binary suffix: ``32k`` → 32768, ``1M`` → 1048576, ``1024``."""
    return _read(text, "tokens", "expected a token count such as 1024, 32k or 1M")


def seconds(text: str | float | int) -> float:
    """A duration: ``50ms`` → 0.05, ``0.05`` (seconds), ``20us``; ``inf``/``none`` → no target."""
    if isinstance(text, str) and not text.strip():
        return math.inf
    return _read(text, "time", "expected a duration such as 50ms, 0.05s or 200us")


#: Most points a command-line list or range may have.
MAX_VALUES = 100_000


def values(text: str, one=number) -> list[float]:
    """One value, a comma list, a range ``lo..hi`` (13 log-spaced points) or ``lo..hi/n`` (n
    log-spaced points), or ``lo:hi:step`` (linear, both ends included when on the step);
    at most :data:`MAX_VALUES` points."""
    s = str(text).strip()
    if "," in s:
        out = [one(p) for p in s.split(",") if p.strip()]
    elif m := re.fullmatch(r"(.+?)\.\.(.+?)(?:/(\d+))?", s):
        lo, hi = one(m.group(1)), one(m.group(2))
        n = int(m.group(3) or 13)
        if not (0 < lo < math.inf and 0 < hi < math.inf) or n < 2:
            raise ParseError(f"log range {text!r} needs finite positive ends and at least 2 points")
        if n > MAX_VALUES:
            raise ParseError(f"expected at most {MAX_VALUES} points, found {n} in {text!r}")
        r = (hi / lo) ** (1.0 / (n - 1))
        out = [lo * r**i for i in range(n - 1)] + [hi]
    elif s.count(":") == 2:
        lo, hi, step = (one(p) for p in s.split(":"))
        if not (0 < step < math.inf and math.isfinite(lo) and math.isfinite(hi)):
            raise ParseError(f"range {text!r} needs finite ends and a positive step")
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1
        if n > MAX_VALUES:
            raise ParseError(f"expected at most {MAX_VALUES} points, found {n} in {text!r}")
        out = [lo + i * step for i in range(n)]
    else:
        out = [one(s)]
    if len(out) > MAX_VALUES:
        raise ParseError(f"expected at most {MAX_VALUES} values, found {len(out)}")
    return out


def key_value(text: str) -> tuple[str, str]:
    """``key=value`` → (key, value)."""
    if "=" not in text:
        raise ParseError(f"expected KEY=VALUE, found {_found(text)}")
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
