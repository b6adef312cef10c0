"""Metadata filters: the ``where`` of a query, compiled to SQL whose values are bound parameters.

A filter restricts the units a query may return *before* they are ranked: the store turns it into
the set of allowed unit ids, and both the dense and the lexical signal search only inside that set.
That is what makes a filtered query return ``k`` hits whenever ``k`` units match; filtering the
top-k after ranking (what many engines do) returns 2 of 10 when the filter is selective.

Two spellings, one meaning:

- the command line's ``--where`` strings, ANDed: ``"format = 'pdf'"``, ``"path GLOB 'finance/*'"``,
  ``"rating >= 9"``, ``"format IN ('pdf', 'docx')"``;
- the Python API's mapping: ``{"format": "pdf", "rating": {">=": 9}}``; a list is IN
  (``{"format": ["pdf", "docx"]}``), an operator mapping may hold several (``{"rating": {">=": 3, "<": 9}}``).

Field names are either built-in document/unit columns (see :data:`BUILTIN_FIELDS`) or the name of a
typed metadata field kept from CSV/TSV/JSONL columns or given to ``add_texts``. Values never enter
the SQL text: every value, and every metadata field name (as a JSON path), is a bound parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from kosearch.errors import KosearchError

BUILTIN_FIELDS: dict[str, str] = {
    "path": "d.path",
    "root": "d.root",
    "format": "d.format",
    "size": "d.size",
    "modified": "d.modified",
    "indexed_at": "d.indexed_at",
    "page": "s.page",
    "line": "s.line",
}
"""Filterable columns every index has: field name -> SQL column (``d`` documents, ``s`` units)."""

OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "glob", "like", "in", "not in")
_OPERATOR_ALIASES = {"==": "=", "<>": "!=", "eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">",
                     "ge": ">=", "$eq": "=", "$ne": "!=", "$lt": "<", "$lte": "<=", "$gt": ">",
                     "$gte": ">=", "$in": "in", "$nin": "not in", "lte": "<=", "gte": ">="}

Scalar = Union[str, int, float, bool, None]
WhereSpec = Union[None, str, Sequence[str], Mapping[str, Any], "Filter"]
"""What ``Index.search(where=...)`` accepts: nothing, one or more ``--where`` strings, a mapping,
or a :class:`Filter` already made."""


class FilterError(KosearchError):
    """A filter expression that cannot be understood; the message shows the expected form."""


@dataclass(frozen=True)
class Condition:
    """``field op value``; for ``in``/``not in`` the value is a tuple."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Filter:
    """A conjunction of conditions (all must hold)."""

    conditions: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.conditions)

    @classmethod
    def parse(cls, where: WhereSpec) -> Filter:
        """A :class:`Filter` from any accepted spelling (see :data:`WhereSpec`)."""
        if where is None:
            return cls()
        if isinstance(where, Filter):
            return where
        if isinstance(where, str):
            return cls((parse_condition(where),))
        if isinstance(where, Mapping):
            return cls(tuple(_conditions_from_mapping(where)))
        if isinstance(where, Sequence):
            conditions: list[Condition] = []
            for item in where:
                if not isinstance(item, str):
                    raise FilterError(f"a list of filters must hold strings like \"rating >= 9\", not {item!r}")
                conditions.append(parse_condition(item))
            return cls(tuple(conditions))
        raise FilterError(f"a filter is a string, a list of strings or a mapping, not {type(where).__name__}")

    def to_sql(self) -> tuple[str, list[Any]]:
        """``(sql, parameters)``: a boolean SQL expression over ``documents d`` and ``sentences s``."""
        if not self.conditions:
            return "1", []
        parts: list[str] = []
        parameters: list[Any] = []
        for condition in self.conditions:
            sql, values = _condition_sql(condition)
            parts.append(sql)
            parameters.extend(values)
        return " and ".join(parts), parameters

    def to_dict(self) -> list[dict[str, Any]]:
        return [{"field": c.field, "op": c.op, "value": c.value} for c in self.conditions]


# -- the --where mini-language ------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])
      | (?P<op><=|>=|==|!=|<>|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[^\s'"(),=<>!]+)
    )""",
    re.VERBOSE,
)
_FIELD_NAME = re.compile(r"^[^\W\d][\w.\-]*$")
_FORM = "FIELD OP VALUE, e.g. \"format = 'pdf'\", \"rating >= 9\", \"path GLOB 'news/*'\", \"format IN ('pdf', 'docx')\""


def parse_condition(text: str) -> Condition:
    """One ``--where`` expression: ``FIELD OP VALUE`` with OP one of ``= != < <= > >= GLOB LIKE IN``
    (and ``NOT IN``); VALUE a quoted string (SQL style: ``''`` inside is a quote), a number,
    ``true``/``false``/``null``, or for IN a parenthesised list."""
    tokens = _tokenize(text)
    if len(tokens) < 3:
        raise FilterError(f"cannot read the filter {text!r}: expected {_FORM}")
    kind, field = tokens[0]
    if kind == "string":
        field = _unquote(field)
    elif kind != "word":
        raise FilterError(f"cannot read the filter {text!r}: it must start with a field name; expected {_FORM}")
    position = 1
    kind, word = tokens[position]
    if kind == "op":
        op = _OPERATOR_ALIASES.get(word, word)
        position += 1
    elif kind == "word" and word.lower() == "not" and position + 1 < len(tokens) and tokens[position + 1][1].lower() == "in":
        op = "not in"
        position += 2
    elif kind == "word" and word.lower() in ("glob", "like", "in"):
        op = word.lower()
        position += 1
    else:
        raise FilterError(f"cannot read the filter {text!r}: unknown operator {word!r}; use one of = != < <= > >= GLOB LIKE IN")
    rest = tokens[position:]
    if op in ("in", "not in"):
        value: Any = _parse_list(rest, text)
    else:
        if len(rest) != 1:
            raise FilterError(f"cannot read the filter {text!r}: expected one value after {op!r}; {_FORM}")
        value = _parse_value(rest[0], text)
    return _checked(Condition(field, op, value))


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"cannot read the filter {text!r} at {text[position:position + 20]!r}; expected {_FORM}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(token: str) -> str:
    quote = token[0]
    return token[1:-1].replace(quote * 2, quote)


def _parse_value(token: tuple[str, str], text: str) -> Scalar:
    kind, value = token
    if kind == "string":
        return _unquote(value)
    if kind == "number":
        number = float(value)
        return int(number) if re.fullmatch(r"[-+]?\d+", value) else number
    if kind == "word" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if kind == "word" and value.lower() == "null":
        return None
    raise FilterError(
        f"cannot read the filter {text!r}: {value!r} is not a value; quote strings, e.g. 'pdf'"
    )


def _parse_list(tokens: list[tuple[str, str]], text: str) -> tuple[Scalar, ...]:
    if len(tokens) < 2 or tokens[0] != ("punct", "(") or tokens[-1] != ("punct", ")"):
        raise FilterError(f"cannot read the filter {text!r}: IN takes a list in parentheses, e.g. IN ('pdf', 'docx')")
    inner = tokens[1:-1]
    values: list[Scalar] = []
    expect_value = True
    for token in inner:
        if expect_value:
            values.append(_parse_value(token, text))
        elif token != ("punct", ","):
            raise FilterError(f"cannot read the filter {text!r}: separate the values of IN with commas")
        expect_value = not expect_value
    if not values or expect_value:
        raise FilterError(f"cannot read the filter {text!r}: IN needs at least one value and no trailing comma")
    return tuple(values)


# -- the mapping spelling ------------------------------------------------------------------------

def _conditions_from_mapping(where: Mapping[str, Any]) -> list[Condition]:
    conditions: list[Condition] = []
    for field, spec in where.items():
        if not isinstance(field, str):
            raise FilterError(f"filter field names are strings, not {field!r}")
        if isinstance(spec, Mapping):
            if not spec:
                raise FilterError(f"the filter on {field!r} is an empty mapping; write e.g. {{'>=': 9}}")
            for op, value in spec.items():
                op_name = _OPERATOR_ALIASES.get(str(op).lower(), str(op).lower())
                if op_name in ("in", "not in"):
                    value = _as_tuple(field, value)
                conditions.append(_checked(Condition(field, op_name, value)))
        elif isinstance(spec, (list, tuple, set, frozenset)):
            conditions.append(_checked(Condition(field, "in", _as_tuple(field, spec))))
        else:
            conditions.append(_checked(Condition(field, "=", spec)))
    return conditions


def _as_tuple(field: str, value: Any) -> tuple[Scalar, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise FilterError(f"the IN filter on {field!r} takes a list of values, not {value!r}")
    values = tuple(sorted(value, key=repr)) if isinstance(value, (set, frozenset)) else tuple(value)
    if not values:
        raise FilterError(f"the IN filter on {field!r} needs at least one value")
    return values


def is_field_name(name: str) -> bool:
    """Whether a filter can name ``name`` (letters, digits, '_', '.', '-'; starting with a letter)."""
    return bool(_FIELD_NAME.match(name))


def _checked(condition: Condition) -> Condition:
    if not is_field_name(condition.field):
        raise FilterError(
            f"{condition.field!r} is not a field name a filter can use "
            "(letters, digits, '_', '.', '-'; starting with a letter)"
        )
    if condition.op not in OPERATORS:
        raise FilterError(f"unknown filter operator {condition.op!r}; use one of {', '.join(OPERATORS)}")
    values = condition.value if condition.op in ("in", "not in") else (condition.value,)
    for value in values:
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise FilterError(f"filter values are strings, numbers, booleans or null, not {value!r}")
        if isinstance(value, float) and value != value:
            raise FilterError(f"the filter on {condition.field!r} compares with NaN, which matches nothing")
    if condition.op in ("glob", "like") and not isinstance(condition.value, str):
        raise FilterError(
            f"the filter on {condition.field!r}: {condition.op.upper()} takes a string pattern, not {condition.value!r}"
        )
    if condition.value is None and condition.op not in ("=", "!="):
        raise FilterError(f"null can only be compared with = or != (filter on {condition.field!r})")
    return condition


def _condition_sql(condition: Condition) -> tuple[str, list[Any]]:
    column = BUILTIN_FIELDS.get(condition.field)
    parameters: list[Any] = []
    if column is None:
        # A metadata field: its JSON path is a parameter too, so no name reaches the SQL text.
        # SQLite matches keys as written in the JSON text: fields must be stored with
        # ensure_ascii=False, or a Korean key (written as \uXXXX escapes) would never match.
        column = "json_extract(s.fields, ?)"
        parameters.append('$."' + condition.field.replace('"', '""') + '"')
    op = condition.op
    if op in ("in", "not in"):
        marks = ", ".join("?" * len(condition.value))
        parameters.extend(_sql_value(v) for v in condition.value)
        return f"{column} {op} ({marks})", parameters
    if condition.value is None:
        return f"{column} is {'not ' if op == '!=' else ''}null", parameters
    parameters.append(_sql_value(condition.value))
    return f"{column} {op} ?", parameters


def _sql_value(value: Scalar) -> Any:
    # JSON booleans come out of json_extract as 1/0.
    return int(value) if isinstance(value, bool) else value
