"""Property-based tests (hypothesis) of the parsers that meet outside input, with the checked-in
seed corpus of hostile inputs from issue 15 (``seeds/``) run as explicit examples."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from k3snode import addresses, bounded
from k3snode.config.load import load
from k3snode.config.model import SettingsError
from k3snode.k3s import configfile, yamlv2
from k3snode.k3s.configfile import ConfigFileError

SEEDS = os.path.join(os.path.dirname(__file__), "seeds")
FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _seed(name: str) -> str:
    with open(os.path.join(SEEDS, name), newline="") as f:
        return f.read()


# -- the config merge ---------------------------------------------------------------------------

MANAGED_KEYS = ("node-external-ip", "flannel-backend", "flannel-external-ip", "server")
user_key = st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True).filter(
    lambda k: k not in MANAGED_KEYS and k not in ("y", "n", "yes", "no", "on", "off")
)
plain = st.from_regex(r"[a-z0-9=.:/_-]{1,20}", fullmatch=True).filter(
    lambda s: not s[0].isdigit() and s not in ("y", "n", "yes", "no", "on", "off", "null", "true")
)
value = st.recursive(
    st.one_of(plain, st.integers(-1000, 1000), st.booleans()),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=4),
        st.dictionaries(user_key, inner, min_size=1, max_size=3),
    ),
    max_leaves=8,
)
user_mapping = st.dictionaries(user_key, value, max_size=6)
managed_mapping = st.fixed_dictionaries(
    {},
    optional={
        "node-external-ip": st.lists(
            st.sampled_from(["203.0.113.5", "2001:db8::5", "198.51.100.7"]),
            min_size=1,
            max_size=2,
            unique=True,
        ),
        "flannel-backend": st.sampled_from(["wireguard-native", "vxlan"]),
        "flannel-external-ip": st.booleans(),
        "server": st.just("https://10.0.0.1:6443"),
    },
)


def _render(mapping: dict, style: str, comments: bool, stale: dict) -> str:
    doc = {**mapping, **stale}
    if not doc:
        return "# nothing yet\n" if comments else ""
    if style == "flow":
        return yaml.safe_dump(doc, default_flow_style=True, sort_keys=False)
    text = yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)
    if style == "anchors" and mapping:
        first = next(iter(mapping))
        if isinstance(mapping[first], (list, dict)):  # an anchor shared by a second user key
            flow = json.dumps(mapping[first])  # JSON is YAML flow style
            rest = {k: v for k, v in doc.items() if k != first}
            text = f"{first}: &shared {flow}\nzz-alias: *shared\n"
            if rest:
                text += yaml.safe_dump(rest, default_flow_style=False, sort_keys=False)
    if comments:
        text = (
            "# my cluster\n"
            + "\n".join(
                line + ("   # note" if line and not line.startswith((" ", "-")) and i % 2 else "")
                for i, line in enumerate(text.splitlines())
            )
            + "\n"
        )
    return text


def _as_k3s_reads(text: str) -> dict:
    """The document as K3s's yaml.v2 reads it: the mapping the merge must keep (``-_0`` is the
    integer 0 to K3s, a string to PyYAML's YAML 1.1 rules)."""
    return yaml.load(text, Loader=yamlv2.loader()) or {}


@FAST
@example(user={"a": {"a": "-_0"}}, managed={}, stale_keys=set(), style="flow", comments=False,
         crlf=False)  # fmt: skip
@given(
    user=user_mapping,
    managed=managed_mapping,
    stale_keys=st.sets(st.sampled_from(MANAGED_KEYS)),
    style=st.sampled_from(["block", "flow", "anchors"]),
    comments=st.booleans(),
    crlf=st.booleans(),
)
def test_merge_keeps_user_content_and_intended_mapping_and_is_idempotent(
    tmp_path_factory, user, managed, stale_keys, style, comments, crlf
):
    path = tmp_path_factory.mktemp("merge") / "config.yaml"
    stale = {k: "old" for k in stale_keys}
    text = _render(user, style, comments, stale)
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes(text.encode())
    before = _as_k3s_reads(text)
    previously = set(stale_keys)
    p = configfile.plan(str(path), managed, previously, "server")
    configfile.apply(p)
    after = _as_k3s_reads(path.read_text())
    kept = {k: v for k, v in before.items() if k not in managed and k not in previously}
    assert after == {**kept, **managed}
    if comments and style == "block" and user:
        assert "# my cluster" in path.read_text(), "comments survive a block document"
    again = configfile.plan(str(path), managed, set(managed) | previously, "server")
    assert not again.changed, "a second merge is a no-op"


@pytest.mark.parametrize(
    "name", sorted(n for n in os.listdir(SEEDS) if n.startswith("config-") and "bomb" not in n)
)
def test_seed_configs_merge_or_fail_in_one_line(tmp_path, name):
    path = tmp_path / "config.yaml"
    text = _seed(name)
    path.write_bytes(text.encode())
    managed = {"node-external-ip": ["203.0.113.5"]}
    p = configfile.plan(str(path), managed, {"node-external-ip"}, "server")
    configfile.apply(p)
    before = yaml.safe_load(text)
    after = yaml.safe_load(path.read_text())
    want = {k: v for k, v in before.items() if k != "node-external-ip"}
    assert after == {**want, **managed}
    assert not configfile.plan(str(path), managed, set(managed), "server").changed


@FAST
@given(st.text(max_size=400))
def test_merge_of_arbitrary_text_never_raises_anything_but_config_file_error(
    tmp_path_factory, text
):
    path = tmp_path_factory.mktemp("any") / "config.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        configfile.plan(str(path), {"node-external-ip": ["203.0.113.5"]}, set(), "server")
    except ConfigFileError as e:
        assert "\n" not in str(e) and str(path) in str(e)


# -- address normalisation ------------------------------------------------------------------------


@given(st.ip_addresses())
def test_normalise_is_the_canonical_form_whatever_the_spelling(ip):
    canonical = str(ip)
    spellings = [canonical, canonical.upper(), f" {canonical}\n", f"{canonical}/32"]
    if ip.version == 6:
        spellings += [f"[{canonical}]", ip.exploded, f"{canonical}/64"]
    for s in spellings:
        assert addresses.normalise(s) == canonical


@given(st.ip_addresses(v=6))
def test_no_ipv4_compatible_or_mapped_address_is_ever_public(ip):
    if int(ip) >> 32 == 0 or ip.ipv4_mapped is not None:
        assert addresses.public_problem(ip) is not None


@given(st.text(max_size=80))
def test_judge_never_raises(text):
    j = addresses.judge(text)
    assert j.ok == (j.problem is None and j.address is not None)
    if j.address is not None:
        ipaddress.ip_address(j.address)


def test_seed_address_is_refused():
    assert addresses.public_problem(_seed("address-ipv4-compatible.txt").strip()) is not None


# -- settings parsing -------------------------------------------------------------------------

ENV_NAMES = ("K3S_URL", "K3SNODE_UNDERLAY_INTERFACE", "K3SNODE_EXTERNAL_IPS", "K3S_NODE_NAME")


@FAST
@given(name=st.sampled_from(ENV_NAMES), value=st.text(min_size=1, max_size=60))
def test_settings_accept_or_refuse_in_one_line_never_a_control_character(name, value):
    env = {name: value, "K3S_TOKEN": "t"}
    try:
        s = load(None, env=env)
    except SettingsError as e:
        assert "\n" not in str(e)
        return
    assert not any(ord(c) < 32 or ord(c) == 127 for c in value), "accepted a control character"
    assert s is not None


@pytest.mark.parametrize("env", json.loads(_seed("settings-env.json")))
def test_seed_settings_are_refused(env):
    with pytest.raises(SettingsError, match="control character"):
        load(None, env=env)


# -- provider answers -------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=2000) | st.text(max_size=2000).map(str.encode))
def test_bounded_parsers_raise_only_their_documented_errors(raw):
    with contextlib.suppress(bounded.TooComplex, ValueError):
        bounded.load_json(raw)
    with contextlib.suppress(bounded.TooComplex, yaml.YAMLError):
        bounded.load_yaml(raw.decode("utf-8", "replace"))


@FAST
@given(depth=st.integers(1, 400), width=st.integers(1, 12))
def test_nesting_and_aliases_stay_within_bounds(depth, width):
    doc = "[" * depth + "1" + "]" * depth
    if depth > bounded.METADATA.max_depth:
        with pytest.raises(bounded.TooComplex):
            bounded.load_json(doc)
    else:
        assert bounded.load_json(doc) is not None
    anchors = (
        "a0: &a0 ["
        + ",".join(["x"] * width)
        + "]\n"
        + "".join(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]\n" for i in range(1, 8))
    )
    if width**8 > bounded.METADATA.max_nodes * 2:
        with pytest.raises(bounded.TooComplex):
            bounded.load_yaml(anchors)
