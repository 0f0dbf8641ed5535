"""How K3s's YAML library reads a plain (unquoted) scalar, so k3snode's strings stay strings.

K3s parses config.yaml with ``gopkg.in/yaml.v2`` (YAML 1.1). Its resolver (``resolve.go``, v2.4.0)
turns a plain scalar into a non-string when it is

- in its table: ``y Y yes Yes YES true True TRUE on On ON`` (true), ``n N no No NO false False
  FALSE off Off OFF`` (false), ``~ null Null NULL`` and the empty scalar (null), ``.inf .Inf .INF``
  with an optional sign, ``.nan .NaN .NAN`` (floats) — only these spellings, not ``yEs``;
- starts with ``.`` and is a float to Go's ``strconv.ParseFloat`` (``.5``, ``.5e3``);
- starts with a digit or a sign and, with every ``_`` removed, is an integer to Go's
  ``strconv.ParseInt(s, 0, 64)`` (``17``, ``+1``, ``017``, ``0o17``, ``0x1F``, ``0b101``, ``1_000``)
  or a float of the form ``[-+]?(\\.D+|D+(\\.D*)?)([eE][-+]?D+)?`` (``1e3``, ``08``, ``1.``);
- a date or date-time starting ``YYYY-`` (K3s then still sees the text, but other readers do not).

Sexagesimal ``1:20`` is a string to v2 (unlike PyYAML). PyYAML's own dumper quotes what *its*
YAML 1.1 resolver would read otherwise, which misses ``y``/``n``, ``1e3``, ``0o17`` and more; so
k3snode's dumper single-quotes every string this module says v2 would not read as a string.
Over-quoting is harmless: a quoted scalar is always a string.
"""

from __future__ import annotations

import re
from functools import cache

_TABLE = {
    **dict.fromkeys(
        ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), "bool"
    ),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE"), "bool"),
    **dict.fromkeys(("off", "Off", "OFF"), "bool"),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), "null"),
    **dict.fromkeys(
        (f"{sign}{word}" for sign in ("", "+", "-") for word in (".inf", ".Inf", ".INF")), "float"
    ),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), "float"),
}
# Go's ParseInt with base 0, after the sign: 0x/0o/0b prefixes, a leading 0 for octal, else decimal.
_GO_INT = re.compile(
    r"[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)", re.ASCII
)
_V2_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", re.ASCII)
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}", re.ASCII)


def plain_kind(text: str) -> str:
    """What yaml.v2 makes of ``text`` written as a plain scalar: str, bool, null, int, float or
    timestamp. Errs towards non-string where Go's range limits would decide (harmless for quoting)."""
    if text in _TABLE:
        return _TABLE[text]
    first = text[0]
    if first == ".":
        return "float" if _DOT_FLOAT.fullmatch(text) else "str"
    if first not in "+-0123456789":
        return "str"
    if _DATE.match(text):
        return "timestamp"
    plain = text.replace("_", "")
    if _GO_INT.fullmatch(plain):
        return "int"
    if _V2_FLOAT.fullmatch(plain):
        return "float"
    return "str"


def needs_quotes(text: str) -> bool:
    """True when ``text`` written unquoted would not reach K3s as this string."""
    return plain_kind(text) != "str"


@cache
def dumper():
    """A PyYAML SafeDumper (libyaml's when present) that single-quotes the strings yaml.v2 would
    read as something else."""
    import yaml

    base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class K3sDumper(base):  # type: ignore[misc, valid-type]
        pass

    def represent_str(dumper, data: str):
        style = "'" if needs_quotes(data) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    K3sDumper.add_representer(str, represent_str)
    return K3sDumper
