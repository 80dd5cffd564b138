"""The one input pipeline for YAML files (sweep configs, observation files): read, cap, parse,
locate errors.

- :func:`read_text` reads at most :data:`MAX_BYTES` bytes of UTF-8 with no NUL;
- :func:`load_yaml` parses it safely: no python tags, no ``!!binary``, duplicate keys rejected,
  nesting depth, aliases and the expanded size capped *while* composing (a billion-laughs file
  or a 20k-deep list fails at once, with one short line);
- :class:`InputError` is the one error: file, line, field, expected, found (truncated);
- :func:`suggest` is the one "did you mean"; :func:`line_of` and :func:`dotted` locate a field;
- :func:`schema_issues` is the one translation of pydantic errors into located :class:`Issue` s
  (line, field, expected, found) that config and observation files report.

Pure Python + PyYAML: cheap to import.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

#: Caps applied before (bytes) and while (the rest) parsing.
MAX_BYTES = 1_000_000
MAX_DEPTH = 32
MAX_ALIASES = 100
MAX_NODES = 100_000  # scalars + items after expanding aliases
MAX_FOUND = 60  # characters of a found value shown in a message


class InputError(ValueError):
    """A bad input file: one line naming the file, line, field, expected and found. Exit code 2."""

    exit_code = 2

    def __init__(self, file: str, line: int | None, field: str, expected: str, found: str):
        self.file, self.line, self.field, self.expected, self.found = file, line, field, expected, found
        where = f"{file}:{line}" if line else file
        field_part = f" {field}:" if field else ""
        super().__init__(f"{where}:{field_part} expected {expected}; found {found}")


def found(value: Any) -> str:
    """``repr(value)`` cut to :data:`MAX_FOUND` characters."""
    text = repr(value)
    return text if len(text) <= MAX_FOUND else text[:MAX_FOUND - 3] + "..."


def suggest(name: Any, choices: Any) -> str:
    """`` (did you mean 'x', 'y'?)`` for the closest choices (at most 3), or ``''`` — the one "did you mean".
    ``choices`` may map spellings (aliases, lower case) to the name to show."""
    m = difflib.get_close_matches(str(name), [str(c) for c in choices], n=3, cutoff=0.5)
    shown = dict.fromkeys(choices[c] if isinstance(choices, dict) else c for c in m)
    return f" (did you mean {', '.join(map(repr, shown))}?)" if shown else ""


# --------------------------------------------------------------------------- reading
def read_text(path: str | Path) -> str:
    """The file's text: :class:`InputError` if missing, unreadable, over :data:`MAX_BYTES`,
    not UTF-8 or holding a NUL."""
    p, file = Path(path), str(path)
    try:
        if p.is_dir():
            raise InputError(file, None, "", "a YAML file", "a directory")
        with open(p, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise InputError(file, None, "", "an existing file", "no such file") from None
    except OSError as e:
        raise InputError(file, None, "", "a readable file", e.strerror or str(e)) from None
    if len(raw) > MAX_BYTES:
        raise InputError(file, None, "", f"a file of at most {MAX_BYTES // 1000} kB",
                         "a larger file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise InputError(file, line, "", "UTF-8 text", f"the byte 0x{raw[e.start]:02x}") from None
    _check_text(text, file)
    return text


def _check_text(text: str, file: str) -> None:
    if len(text) > MAX_BYTES:
        raise InputError(file, None, "", f"at most {MAX_BYTES // 1000} kB of text", "more")
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise InputError(file, line, "", "text", "a NUL character")


class _Loader(yaml.SafeLoader):
    """SafeLoader with caps on depth and aliases and no duplicate keys or binary scalars."""

    def __init__(self, stream: str, file: str):
        super().__init__(stream)
        self.file, self._depth, self._aliases = file, 0, 0

    def _fail(self, node_or_mark: Any, expected: str, what: str) -> InputError:
        mark = getattr(node_or_mark, "start_mark", node_or_mark)
        return InputError(self.file, mark.line + 1 if mark else None, "", expected, what)

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise self._fail(self.peek_event(), f"at most {MAX_ALIASES} aliases (*name)", "more")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._fail(self.peek_event(), f"nesting at most {MAX_DEPTH} levels deep", "deeper")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in getattr(node, "value", []):
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                raise self._fail(key_node, "a plain key", "a list or mapping as a key") from None
            if first is not None:
                raise self._fail(key_node, "each key once",
                                 f"{found(key)} again (first on line {first})")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_binary(self, node):
        raise self._fail(node, "text or numbers", "a !!binary value")


_Loader.add_constructor("tag:yaml.org,2002:binary", _Loader.construct_yaml_binary)


def _count_nodes(root: yaml.Node, file: str) -> None:
    """Raise if the document, with aliases expanded, has more than :data:`MAX_NODES` nodes."""
    memo: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) in memo:
            return memo[id(node)]
        memo[id(node)] = 1  # cycles count once
        n = 1
        if isinstance(node, yaml.SequenceNode):
            n += sum(size(v) for v in node.value)
        elif isinstance(node, yaml.MappingNode):
            n += sum(size(k) + size(v) for k, v in node.value)
        memo[id(node)] = min(n, MAX_NODES + 1)
        return memo[id(node)]

    if size(root) > MAX_NODES:
        raise InputError(file, None, "", f"at most {MAX_NODES} values (aliases expanded)", "more")


def load_yaml(text: str, file: str = "<string>") -> tuple[Any, yaml.Node | None]:
    """(data, root node) of one YAML document, or :class:`InputError` (syntax, caps, tags,
    duplicate keys)."""
    _check_text(text, file)
    loader = _Loader(text, file)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _count_nodes(root, file)
        data = loader.construct_document(root)
    except InputError:
        raise
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        raise InputError(file, mark.line + 1 if mark else None, "", "plain YAML values (no tags)",
                         found((e.problem or "").rsplit(" ", 1)[-1])) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(file, mark.line + 1 if mark else None, "", "valid YAML",
                         f"a syntax error ({problem})") from None
    except RecursionError:
        raise InputError(file, None, "", f"nesting at most {MAX_DEPTH} levels deep",
                         "deeper") from None
    finally:
        loader.dispose()
    return data, root


def load_mapping(path: str | Path, expected: str) -> tuple[dict, yaml.Node, str]:
    """(data, root node, text) of a YAML file whose top level must be a mapping."""
    file = str(path)
    text = read_text(path)
    data, root = load_yaml(text, file)
    if not isinstance(data, dict):
        raise InputError(file, 1, "", expected, "an empty file" if data is None
                         else f"{type(data).__name__} {found(data)}")
    return data, root, text


# --------------------------------------------------------------------------- locating
def node_at(root: yaml.Node | None, loc: tuple, key_node: bool = False) -> yaml.Node | None:
    """The deepest node of ``root`` along ``loc`` (keys and list indices; other parts, such
    as pydantic union tags, are skipped); the key's node when ``key_node``."""
    node, best = root, root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if hit is None:
                continue
            node = best = hit[1]
            if key_node and part == loc[-1]:
                best = hit[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                node = best = node.value[part]
    return best


def line_of(root: yaml.Node | None, loc: tuple, key_node: bool = False) -> int | None:
    """1-based line of the field at ``loc`` (or of its nearest parent in the file)."""
    node = node_at(root, loc, key_node)
    return node.start_mark.line + 1 if node is not None else None


def dotted(path: tuple) -> str:
    """``('axes', 'hardware', 0)`` → ``axes.hardware[0]``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


# --------------------------------------------------------------------------- schema errors
class Issue(NamedTuple):
    """One located schema error: 1-based line (or None), dotted field, what was expected, what
    was found, and ``sentence``: a validator's own sentence when it says more than that."""

    line: int | None
    field: str
    expected: str
    found: str
    sentence: str | None = None

    @property
    def message(self) -> str:
        """The one-line body: ``expected …; found …``, or the validator's own sentence (at most
        2000 characters)."""
        text = self.sentence or f"expected {self.expected}; found {self.found}"
        return text if len(text) <= 2000 else text[:1997] + "..."


#: What a pydantic error type expects, in rooflax's words (``{…}``: the error's context).
EXPECTED = {
    "float_parsing": "a number", "float_type": "a number", "int_parsing": "an integer",
    "int_type": "an integer", "string_type": "a string", "bool_parsing": "true or false",
    "bool_type": "true or false", "dict_type": "a mapping (key: value)", "list_type": "a list",
    "tuple_type": "a list", "greater_than": "a number > {gt}",
    "greater_than_equal": "a number greater than or equal to {ge}",
    "less_than_equal": "a number less than or equal to {le}",
    "too_short": "at least {min_length} item(s)", "too_long": "at most {max_length} item(s)",
}
#: Parts of a pydantic location that name a union branch, not a field (discriminator tags).
_TAGS = {"list", "range", "scalar", "name", "inline", "continuous", "settings", "str"}


def _is_tag(part: Any) -> bool:
    """A union branch in a location: a tag, a model name (``HardwareSpec``) or a validator."""
    return isinstance(part, str) and (part in _TAGS or part[:1].isupper() or "[" in part
                                      or "-" in part)


def field_of(loc: tuple, data: Any, last_is_field: bool = False) -> str:
    """The dotted field of a pydantic location in ``data``: its keys and indices, union branches
    skipped (the last part is always a field when ``last_is_field``: a missing or unknown one),
    and so are names a validator gave to a value that is not a mapping (``outputs: [...]`` read
    as ``outputs.values``)."""
    parts: list = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, list) and isinstance(part, int):
            node = node[part] if 0 <= part < len(node) else None
        elif isinstance(node, dict) and part in node:
            node = node[part]
        elif node is not None and not isinstance(node, dict):
            continue
        elif _is_tag(part) and not (last_is_field and i == len(loc) - 1):
            continue
        else:
            node = None
        parts.append(part)
    return dotted(tuple(parts))


def _wording(e: dict) -> tuple[str, str, str | None]:
    """(expected, found, own sentence or None) of one pydantic error of a given value."""
    typ, ctx, what = e["type"], e.get("ctx") or {}, found(e.get("input"))
    raw = str(ctx.get("error", e["msg"])) if typ == "value_error" else e["msg"]
    raw = raw.removeprefix("Value error, ")
    if any(isinstance(p, str) and (p == "str" or p[:1].isupper()) for p in e["loc"]):
        return f"a catalog name or a mapping of numbers (a bad field under it: {raw})", what, None
    if typ in EXPECTED:
        return EXPECTED[typ].format(**ctx), what, None
    if raw.startswith(("expected ", "Input should be ")):
        expected = raw.removeprefix("expected ").removeprefix("Input should be ")
        return expected, what, raw if "found" in raw else None
    return raw, what, raw if "found" in raw else f"{raw}; found {what}"


def issue(e: dict, data: Any, root: yaml.Node | None,
          allowed: Callable[[tuple], Sequence[str]]) -> Issue:
    """One pydantic error (an item of ``ValidationError.errors()``) located in the YAML file;
    an unknown field lists the fields ``allowed`` beside it (given its location), with a "did
    you mean"."""
    loc, typ = tuple(e["loc"]), e["type"]
    field = field_of(loc, data, last_is_field=typ in ("extra_forbidden", "missing"))
    if typ == "extra_forbidden":
        names = list(allowed(loc))
        return Issue(line_of(root, loc, key_node=True), field,
                     f"one of the known fields ({', '.join(names)})" if names else "a known field",
                     f"unknown field {str(loc[-1])!r}{suggest(loc[-1], names)}")
    if typ == "missing":
        return Issue(line_of(root, loc[:-1]), field, "this required field",
                     "nothing (missing required field)")
    return Issue(line_of(root, loc), field, *_wording(e))


def schema_issues(err: Any, data: Any, root: yaml.Node | None,
                  allowed: Callable[[tuple], Sequence[str]], most: int = 8) -> list[Issue]:
    """The located issues of a pydantic ``ValidationError`` — the one translation of schema
    errors for every YAML input — in pydantic's order, repeats dropped, at most ``most``."""
    out: list[Issue] = []
    for e in err.errors(include_url=False):
        i = issue(e, data, root, allowed)
        if all((i.field, i.message) != (o.field, o.message) for o in out):
            out.append(i)
    return out[:most]
