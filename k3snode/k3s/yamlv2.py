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
Over-quoting is harmless: a quoted scalar is always a string. ``loader()`` reads files the same
way, so k3snode judges an existing config as K3s will see it.
"""

from __future__ import annotations

import re
from functools import cache

_TRUE = ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")
_FALSE = ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")
_BOOLS = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}
_TABLE = {
    **dict.fromkeys(_BOOLS, "bool"),
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


_TAGS = {
    "bool": "tag:yaml.org,2002:bool",
    "null": "tag:yaml.org,2002:null",
    "int": "tag:yaml.org,2002:int",
    "float": "tag:yaml.org,2002:float",
    "timestamp": "tag:yaml.org,2002:str",  # decoded into interface{}, yaml.v2 keeps the text
    "str": "tag:yaml.org,2002:str",
}


def go_int(text: str) -> int:
    """The integer yaml.v2 makes of ``text`` (``_`` removed, then Go's base-0 rules)."""
    plain = text.replace("_", "")
    sign = -1 if plain.startswith("-") else 1
    body = plain.lstrip("+-")
    if len(body) > 1 and body[0] == "0" and body[1] in "01234567":
        return sign * int(body, 8)  # 017: octal, which Python's base 0 refuses
    return sign * int(body, 0)


def go_float(text: str) -> float:
    plain = text.replace("_", "")
    word = plain.lower().lstrip("+-")
    if word == ".inf":
        return float("-inf") if plain.startswith("-") else float("inf")
    if word == ".nan":
        return float("nan")
    return float(plain)


@cache
def loader():
    """A PyYAML SafeLoader that resolves plain scalars as yaml.v2 does (``y`` is true, ``0o17``
    is 15, ``1:20`` and dates stay text), for reading files the way K3s reads them."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser calls resolve() too

    class K3sLoader(base):  # type: ignore[misc, valid-type]
        def resolve(self, kind, value, implicit):
            if kind is yaml.ScalarNode and implicit[0] and value != "<<":
                return _TAGS[plain_kind(value)]
            return super().resolve(kind, value, implicit)

    def scalar(convert):
        def construct(loader, node):
            value = loader.construct_scalar(node)
            try:
                return convert(value)
            except (KeyError, ValueError):
                raise yaml.constructor.ConstructorError(
                    None, None, f"cannot read {value!r} as {node.tag}", node.start_mark
                ) from None

        return construct

    K3sLoader.add_constructor(_TAGS["bool"], scalar(lambda v: _BOOLS[v]))
    K3sLoader.add_constructor(_TAGS["int"], scalar(go_int))
    K3sLoader.add_constructor(_TAGS["float"], scalar(go_float))
    # "<<" stays a merge key; as a value it is text to yaml.v2
    K3sLoader.add_constructor("tag:yaml.org,2002:merge", lambda loader, node: node.value)
    return K3sLoader
