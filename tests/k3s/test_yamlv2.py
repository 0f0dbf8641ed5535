"""Strings k3snode writes reach K3s as strings: its YAML library is gopkg.in/yaml.v2 (YAML 1.1).

Upstream: go-yaml/yaml ``resolve.go`` at tag v2.4.0 (commit 7649d4548cb5, the version K3s pins),
``decode.go`` (timestamps decode to their text when the target is ``interface{}``). The oracle
tests run Debian's build of that very library on the files k3snode writes.
"""

from __future__ import annotations

import pytest
import yaml
from goyaml import decode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k3snode.k3s import configfile, yamlv2

# (plain scalar, what yaml.v2 v2.4.0 resolves it to)
CASES = [
    *[
        (w, "bool")
        for w in ["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"]
    ],
    *[
        (w, "bool")
        for w in ["n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"]
    ],
    *[(w, "null") for w in ("~", "null", "Null", "NULL", "")],
    ("17", "int"),
    ("+1", "int"),
    ("-0", "int"),
    ("017", "int"),
    ("0o17", "int"),
    ("0O17", "int"),
    ("0x1F", "int"),
    ("-0x1f", "int"),
    ("0b101", "int"),
    ("1_000", "int"),
    ("1_", "int"),
    ("1e3", "float"),
    ("1E+3", "float"),
    ("08", "float"),
    ("1.", "float"),
    (".5", "float"),
    ("+.5", "float"),
    ("1.5e-3", "float"),
    *[(w, "float") for w in (".inf", ".Inf", ".INF", "-.inf", "+.INF", ".nan", ".NaN", ".NAN")],
    ("2001-12-14", "timestamp"),
    ("2001-12-14t21:59:43.10Z", "timestamp"),
    # strings to yaml.v2 (some of them not to PyYAML)
    *[(w, "str") for w in ("yEs", "nO", "oN", "tRUE", "Nope", "yes-please", "t", "f", "o")],
    ("1:20", "str"),  # sexagesimal: YAML 1.1 int, deliberately a string in v2
    ("190:20:30.15", "str"),
    ("0x", "str"),
    ("0b2", "str"),
    ("1e", "str"),
    (".", "str"),
    (".e3", "str"),
    ("-", "str"),
    ("1.2.3", "str"),
    ("10.0.0.1", "str"),
    ("2001:db8::7", "str"),
    ("node-1", "str"),
    ("zone=eu", "str"),
    (".Nan", "str"),
    ("<<", "str"),
]


@pytest.mark.parametrize(("text", "kind"), CASES)
def test_plain_kind_table(text, kind):
    assert yamlv2.plain_kind(text) == kind
    assert yamlv2.needs_quotes(text) == (kind != "str")


def test_node_name_n_reaches_k3s_as_a_string(tmp_path):
    """The issue's example: PyYAML's dumper writes node-name n unquoted, K3s reads false."""
    path = tmp_path / "config.yaml"
    managed = {
        "node-name": "n",
        "node-label": ["y", "on", "1e3", "0o17", "0x1F", "1_000", ".inf", "~", "1:20", "a=b"],
    }
    configfile.apply(configfile.plan(str(path), managed, set(), "server"))
    text = path.read_text()
    assert "node-name: 'n'\n" in text
    for quoted in ("'y'", "'on'", "'1e3'", "'0o17'", "'0x1F'", "'1_000'", "'.inf'", "'~'"):
        assert f"- {quoted}\n" in text
    assert "- a=b\n" in text  # no quotes where none are needed
    assert yaml.safe_load(text) == managed


@pytest.fixture(scope="module")
def oracle(goyaml_oracle):
    return goyaml_oracle


def _is_plain_scalar(text: str) -> bool:
    """``k: TEXT`` is a mapping to a plain scalar with exactly this text (not ``-``, not empty)."""
    try:
        node = yaml.compose(f"k: {text}\n")
    except yaml.YAMLError:
        return False
    value = node.value[0][1]
    return isinstance(value, yaml.ScalarNode) and value.style is None and value.value == text != ""


def test_oracle_agrees_with_the_table(oracle, tmp_path):
    """Debian's gopkg.in/yaml.v2 itself decides every case of the table (written plain)."""
    path = tmp_path / "plain.yaml"
    rows = [(t, k) for t, k in CASES if _is_plain_scalar(t)]
    assert len(rows) >= 75
    path.write_text("".join(f"k{i}: {t}\n" for i, (t, _) in enumerate(rows)))
    got = decode(oracle, str(path))
    go_kind = {"bool": "bool", "<nil>": "null", "int": "int", "uint64": "int", "float64": "float"}
    for (text, kind), (_key, gotype, shown) in zip(rows, got):
        # a timestamp decodes to its text into interface{} (decode.go): a string to K3s
        want = "str" if kind in ("str", "timestamp") else kind
        assert go_kind.get(gotype, "str") == want, (text, gotype, shown)
        if want == "str":
            assert shown == text


def test_everything_k3snode_writes_is_read_back_as_written(oracle, tmp_path):
    """k3snode's own file, through yaml.v2: each string a string with the same text."""
    values = [t for t, _ in CASES] + ["it's", "a: b", "#x", "- x", "'q'", '"dq"', "multi\nline"]
    path = tmp_path / "config.yaml"
    managed = {"node-name": "y", "node-label": values}
    configfile.apply(configfile.plan(str(path), managed, set(), "server"))
    got = decode(oracle, str(path))
    assert got[0] == ("node-name", "string", "y")
    assert got[1][0] == "node-label"
    assert got[1][1] == "[]interface {}"
    # fmt.Sprint of a []interface{} is "[a b c]": compare item by item through the next test's
    # file, one scalar per key, which keeps the text exact
    flat = tmp_path / "flat.yaml"
    flat.write_text(configfile._dump({f"k{i}": v for i, v in enumerate(values)}))
    for value, (_key, gotype, shown) in zip(values, decode(oracle, str(flat))):
        assert (gotype, shown) == ("string", value)


SCALAR_TEXT = st.text(
    alphabet=st.sampled_from(list("0123456789+-._:~eExXoObBaAfFnNyYtTlLsSuU ")),
    min_size=0,
    max_size=8,
) | st.sampled_from([t for t, _ in CASES])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("prop")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(SCALAR_TEXT, min_size=1, max_size=20))
def test_property_strings_stay_strings(oracle, scratch, texts):
    """Any string, dumped by k3snode and decoded by yaml.v2, is that very string."""
    path = scratch / "prop.yaml"
    path.write_text(configfile._dump({f"k{i}": t for i, t in enumerate(texts)}))
    got = decode(oracle, str(path))
    assert [(g[1], g[2]) for g in got] == [("string", t) for t in texts]


@settings(max_examples=200, deadline=None)
@given(SCALAR_TEXT.filter(lambda s: s == s.strip()))
def test_property_never_under_quotes(text):
    """Whenever PyYAML would write a string plain, yaml.v2 reads it as a string (the classifier
    is checked against the oracle by the table; here, the dumper against the classifier)."""
    out = configfile._dump({"k": text})
    node = yaml.compose(out)
    scalar = node.value[0][1]
    if scalar.style is None:
        assert yamlv2.plain_kind(text) == "str", out


def test_reading_side_matches_yaml_v2(oracle, tmp_path):
    """k3snode reads existing files as K3s does: the loader gives what yaml.v2 gives (bool, nil,
    int, float or the text) for every plain case of the table."""
    import math

    rows = [t for t, _k in CASES if _is_plain_scalar(t)]
    path = tmp_path / "plain.yaml"
    path.write_text("".join(f"k{i}: {t}\n" for i, t in enumerate(rows)))
    ours = yaml.load(path.read_text(), Loader=yamlv2.loader())
    for i, (text, (_key, gotype, shown)) in enumerate(zip(rows, decode(oracle, str(path)))):
        value = ours[f"k{i}"]
        if gotype == "bool":
            assert value is (shown == "true"), text
        elif gotype == "<nil>":
            assert value is None, text
        elif gotype in ("int", "uint64"):
            assert type(value) is int and str(value) == shown, text
        elif gotype == "float64":
            assert isinstance(value, float), text
            assert (math.isnan(value) and shown == "NaN") or value == float(shown), text
        else:
            assert (gotype, value) == ("string", text)
    # a quoted scalar is always a string, and "y" as an unquoted key's value is true
    assert yaml.load("a: 'y'\nb: y\n", Loader=yamlv2.loader()) == {"a": "y", "b": True}
