"""The K3s config as K3s reads it: config.yaml, then config.yaml.d/*.yaml|*.yml in name order.

Upstream: k3s-io/k3s ``pkg/configfilearg/parser.go`` (``readConfigFile``, ``dotDFiles``,
``toSlice``, ``findConfigFileFlag``) at commit f646604010af (as in main 66a14f0e, see
shared/reference/k3s.md §1) and its ``testdata/data.yaml.d``; gopkg.in/yaml.v2 v2.4.0
``decode.go`` (``mappingSlice``: duplicate keys kept in order, no error); K3s ``install.sh``
(``create_env_file``, ``create_systemd_service_file``: ``EnvironmentFile=`` order,
``k3s-${INSTALL_K3S_NAME}``).
"""

from __future__ import annotations

import pytest
from goyaml import decode
from helpers import run_k3snode

from k3snode.config.load import load
from k3snode.health.registry import observers
from k3snode.k3s import configfile, effective, families, ordering, overrides


def k3s_dir(tmp_path, main: str | None, **dropins: str):
    d = tmp_path / "etc/rancher/k3s"
    (d / "config.yaml.d").mkdir(parents=True)
    if main is not None:
        (d / "config.yaml").write_text(main)
    for name, text in dropins.items():
        (d / "config.yaml.d" / name.replace("_", "-").replace("-yaml", ".yaml")).write_text(text)
    return d


def test_order_and_merge_rules(tmp_path):
    d = tmp_path / "etc/rancher/k3s"
    (d / "config.yaml.d" / "sub.yaml").mkdir(parents=True)  # a directory: skipped
    (d / "config.yaml").write_text("node-label: [a=1]\nnode-name: one\ntls-san: x\n")
    (d / "config.yaml.d/20-b.YML").write_text("node-label+: b=2\nnode-name: two\n")
    (d / "config.yaml.d/10-a.yaml").write_text("node-label+: [c=3]\ntls-san+: z\n")
    (d / "config.yaml.d/30-ignored.txt").write_text("node-name: never\n")
    view = effective.load(str(d / "config.yaml"), "k3s", root=str(tmp_path))
    assert [p.rsplit("/", 1)[1] for p in view.files] == ["config.yaml", "10-a.yaml", "20-b.YML"]
    assert view.values() == {
        "node-label": ["a=1", "c=3", "b=2"],
        "node-name": "two",
        "tls-san": ["x", "z"],
    }


def test_append_first_is_a_plain_set(tmp_path):
    d = k3s_dir(tmp_path, None, **{"10-a.yaml": "node-label+: a=1\n"})
    view = effective.load(str(d / "config.yaml"), "k3s", root=str(tmp_path))
    assert view.values() == {"node-label": "a=1"}  # the main file may be missing


def test_dropin_overriding_and_extending_managed_keys_is_reported(tmp_path):
    """A later drop-in replaces node-external-ip and extends server: K3s does not get k3snode's."""
    d = k3s_dir(
        tmp_path,
        "node-external-ip: [203.0.113.5]\nserver: https://a.example:6443\nnode-label+: [x=y]\n",
        **{
            "50-user.yaml": "node-external-ip: 198.51.100.9\nserver+: https://b.example:6443\n",
            "05-early.yaml": "node-external-ip: 192.0.2.1\n",
        },
    )
    own = str(d / "config.yaml")
    view = effective.load(own, "k3s-agent", root=str(tmp_path))
    rep = overrides.report(view, own, ["node-external-ip", "server", "token-file"], "agent")
    assert not rep.ok and not rep.errors
    early, user, server = rep.overrides
    # every drop-in comes after config.yaml: both replace k3snode's value, the last one wins
    assert early.startswith(f"{d}/config.yaml.d/05-early.yaml:1: node-external-ip replaces ")
    assert user.startswith(f"{d}/config.yaml.d/50-user.yaml:1: node-external-ip replaces ")
    assert user.endswith("K3s ends up with '198.51.100.9'")
    assert server == (
        f"{d}/config.yaml.d/50-user.yaml:2: server+ appends to k3snode's server (K3s reads it "
        f"after {own}); K3s ends up with https://a.example:6443, https://b.example:6443"
    )


def test_own_file_as_dropin_wins_over_earlier_files(tmp_path):
    d = k3s_dir(
        tmp_path,
        "node-external-ip: 192.0.2.1\n",
        **{"90-k3snode.yaml": "node-external-ip: [203.0.113.5]\n"},
    )
    own = str(d / "config.yaml.d/90-k3snode.yaml")
    view = effective.load(own, "k3s", root=str(tmp_path))
    rep = overrides.report(view, own, ["node-external-ip"], "server")
    assert rep.ok and rep.lines() == []
    assert view.values()["node-external-ip"] == ["203.0.113.5"]


def test_user_append_key_in_own_file_gets_no_false_warning(tmp_path):
    """Today's plan() checked "node-label+" as a flag name: "K3s may refuse to start"."""
    path = tmp_path / "config.yaml"
    path.write_text("node-label+:\n  - zone=eu\nkubelet-arg+: max-pods=200\n")
    plan = configfile.plan(str(path), {"server": "https://a:6443"}, set(), "agent")
    assert plan.warnings == ()
    path.write_text("node-lable+: zone=eu\n")  # a real mistake is still reported
    plan = configfile.plan(str(path), {"server": "https://a:6443"}, set(), "agent")
    assert len(plan.warnings) == 1 and "'node-lable+'" in plan.warnings[0]


def test_duplicate_keys_last_wins_like_yaml_v2(tmp_path, goyaml_oracle):
    """yaml.v2 keeps both items of a duplicate key (MapSlice) and K3s's merge keeps the last:
    a warning, the file untouched by the check, K3s's semantics kept when k3snode writes."""
    text = (
        "node-name: first\ntls-san: a\nnode-name: second\nnode-label+: [x=1]\nnode-label+: [y=2]\n"
    )
    d = k3s_dir(tmp_path, text)
    own = str(d / "config.yaml")
    assert [k for k, _t, _v in decode(goyaml_oracle, own)] == [
        "node-name",
        "tls-san",
        "node-name",
        "node-label+",
        "node-label+",
    ]
    view = effective.load(own, "k3s", root=str(tmp_path))
    assert view.values()["node-name"] == "second"
    assert view.values()["node-label"] == ["x=1", "y=2"]
    rep = overrides.report(view, own, ["node-external-ip"], "server")
    assert rep.ok
    assert rep.notes == (f"{own}: node-name is set twice (lines 1 and 3); K3s uses line 3",)
    # k3snode writes its keys and keeps both duplicate lines: K3s still sees "second"
    plan = configfile.plan(own, {"node-external-ip": ["203.0.113.5"]}, set(), "server")
    configfile.apply(plan)
    after = (d / "config.yaml").read_text()
    assert after.startswith(text)
    assert effective.load(own, "k3s", root=str(tmp_path)).values()["node-name"] == "second"


def test_apply_reports_duplicates_in_one_line_each(root):
    (root / "etc/k3snode/config.toml").write_text('[node]\nrole = "server"\n')
    cfg = root / "etc/rancher/k3s/config.yaml"
    cfg.write_text("node-name: a\nnode-name: b\n")
    r = run_k3snode(
        "apply",
        "--config",
        str(root / "etc/k3snode/config.toml"),
        "--state-dir",
        str(root / "var/lib/k3snode"),
        "--k3s-config",
        str(cfg),
        "--external-ip",
        "203.0.113.5",
        "--no-restart",
    )
    assert r.returncode == 0, r.stderr
    dup = [line for line in r.stderr.splitlines() if "set twice" in line]
    assert dup == [
        f"k3snode: warning: {cfg}: node-name is set twice (lines 1 and 2); K3s uses line 2"
    ]
    assert cfg.read_text().startswith("node-name: a\nnode-name: b\n")


@pytest.mark.parametrize(
    ("unit", "envfile"),
    [
        ("k3s", "etc/systemd/system/k3s.service.env"),
        ("k3s-agent", "etc/systemd/system/k3s-agent.service.env"),
        ("k3s-edge", "etc/systemd/system/k3s-edge.service.env"),  # INSTALL_K3S_NAME=edge
        ("k3s-edge", "etc/default/k3s-edge"),
    ],
)
def test_k3s_config_file_in_env_points_k3s_elsewhere(tmp_path, unit, envfile):
    d = k3s_dir(tmp_path, "node-external-ip: [203.0.113.5]\n")
    other = tmp_path / "elsewhere.yaml"
    other.write_text("node-name: x\n")
    env = tmp_path / envfile
    env.parent.mkdir(parents=True, exist_ok=True)
    env.write_text(f"K3S_URL='https://a:6443'\n# comment\nK3S_CONFIG_FILE=\"{other}\"\n")
    own = str(d / "config.yaml")
    view = effective.load(own, unit, root=str(tmp_path))
    assert view.source.path == str(other) and view.source.origin == f"K3S_CONFIG_FILE in {env}"
    rep = overrides.report(view, own, ["node-external-ip"], "server")
    assert len(rep.errors) == 1
    assert rep.errors[0].startswith(f"K3s reads {other} (K3S_CONFIG_FILE in {env})")
    assert "k3snode's keys never reach K3s" in rep.errors[0]


def test_env_pointing_at_own_file_or_empty_is_fine(tmp_path):
    d = k3s_dir(tmp_path, "node-external-ip: [203.0.113.5]\n")
    own = str(d / "config.yaml")
    env = tmp_path / "etc/systemd/system/k3s.service.env"
    env.parent.mkdir(parents=True)
    env.write_text(f"K3S_CONFIG_FILE={own}\n")
    assert overrides.report(effective.load(own, "k3s", str(tmp_path)), own, [], "server").ok
    env.write_text("K3S_CONFIG_FILE=\n")  # K3s ignores an empty value: its default
    (tmp_path / "etc/systemd/system/k3s.service").write_text("[Service]\n")
    view = effective.load(own, "k3s", str(tmp_path))
    assert view.source.path == effective.DEFAULT_CONFIG
    assert not overrides.report(view, own, [], "server").ok  # own is under tmp, not the default


def test_files_are_read_bounded(tmp_path):
    d = k3s_dir(tmp_path, "node-name: a\n", **{"50-big.yaml": "# " + "x" * (2 << 20) + "\n"})
    (d / "config.yaml.d/60-bad.yaml").write_text("node-name: [unclosed\n")
    view = effective.load(str(d / "config.yaml"), "k3s", str(tmp_path))
    assert view.values() == {"node-name": "a"}
    big, bad = view.errors
    assert big == f"{d}/config.yaml.d/50-big.yaml: larger than 1024 KiB; not read"
    assert bad.startswith(f"{d}/config.yaml.d/60-bad.yaml: not valid YAML at line 2: ")
    for i in range(effective.MAX_DROPINS + 1):
        (d / f"config.yaml.d/{i:03}-x.yaml").write_text("node-name: x\n")
    view = effective.load(str(d / "config.yaml"), "k3s", str(tmp_path))
    assert view.values() == {"node-name": "a"}  # the main file only
    assert view.errors == (f"{d}/config.yaml.d: more than 200 config files; not read",)
    big_env = tmp_path / "etc/systemd/system/k3s.service.env"
    big_env.parent.mkdir(parents=True)
    big_env.write_text("X=" + "y" * (100 << 10) + "\n")
    _src, problems = effective.source("k3s", str(tmp_path))
    assert problems == [
        f"{big_env}: cannot check for K3S_CONFIG_FILE (larger than 64 KiB; not read)"
    ]


def test_unknown_key_in_another_file_is_noted(tmp_path):
    d = k3s_dir(tmp_path, "server: https://a:6443\n", **{"50-x.yaml": "flannel-backend: none\n"})
    own = str(d / "config.yaml")
    rep = overrides.report(
        effective.load(own, "k3s-agent", str(tmp_path)), own, ["server"], "agent"
    )
    assert rep.ok
    assert rep.notes == (
        f"{d}/config.yaml.d/50-x.yaml:1: flannel-backend is a `k3s server` flag only; "
        "`k3s agent` does not know it; K3s may refuse to start",
    )


def test_many_unknown_keys_in_another_file_are_noted_three_and_counted(tmp_path):
    dropin = "".join(f"no-such-flag-{i}: x\n" for i in range(50))
    d = k3s_dir(tmp_path, "server: https://a:6443\n", **{"50-x.yaml": dropin})
    own = str(d / "config.yaml")
    rep = overrides.report(effective.load(own, "k3s", str(tmp_path)), own, ["server"], "server")
    assert rep.notes == (
        *(f"{d}/config.yaml.d/50-x.yaml:{i + 1}: no-such-flag-{i} is not a flag of `k3s server`; "
          "K3s may refuse to start" for i in range(3)),
        "… and 47 more keys `k3s server` does not know in the other files K3s reads; "
        "K3s may refuse to start",
    )  # fmt: skip


FAMILY_CASES = [
    ("server", {}, {4}, {6}),
    ("server", {"cluster-cidr": "10.42.0.0/16"}, {4}, set()),
    ("server", {"cluster-cidr": "fd00:42::/56"}, {6}, set()),
    ("server", {"cluster-cidr": "10.42.0.0/16,fd00:42::/56"}, {4, 6}, set()),
    ("server", {"cluster-cidr": ["fd00:42::/56", "10.42.0.0/16"]}, {4, 6}, set()),
    ("server", {"node-external-ip": ["2001:db8::7"]}, {6}, set()),
    ("server", {"node-ip": ["10.0.0.5", "2001:db8::5"]}, {4}, {6}),
    ("agent", {"node-external-ip": ["2001:db8::7"]}, {6}, {4}),
    ("agent", {"node-external-ip": ["203.0.113.5", "2001:db8::7"]}, {4}, {6}),
    ("agent", {"node-ip": "2001:db8::5", "node-external-ip": ["203.0.113.5"]}, {6}, {4}),
]


@pytest.mark.parametrize(("role", "values", "required", "optional"), FAMILY_CASES)
def test_ip_families(role, values, required, optional):
    fams = families.ip_families(values, role)
    assert (set(fams.required), set(fams.optional)) == (required, optional)


def test_custom_unit_ordering_dropin(tmp_path):
    """INSTALL_K3S_NAME=edge → k3s-edge.service, which k3snode.service's Before= cannot name."""
    s = load(None, env={"K3SNODE_K3S_UNIT": "k3s-edge.service"})
    (w,) = ordering.preflight(s, root=str(tmp_path))
    assert w.level == "warning" and "k3s-edge.service may start before k3snode" in w.message
    path = ordering.ensure(s, root=str(tmp_path))
    assert path == str(tmp_path / "etc/systemd/system/k3s-edge.service.d/10-k3snode.conf")
    text = (tmp_path / "etc/systemd/system/k3s-edge.service.d/10-k3snode.conf").read_text()
    assert "[Unit]\nAfter=k3snode.service\n" in text
    assert ordering.ensure(s, root=str(tmp_path)) is None  # unchanged: not written again
    assert [f.level for f in ordering.preflight(s, root=str(tmp_path))] == ["ok"]
    for unit in ("k3s", "k3s-agent"):
        std = load(None, env={"K3SNODE_K3S_UNIT": unit})
        assert ordering.ensure(std, root=str(tmp_path)) is None
        assert not (tmp_path / f"etc/systemd/system/{unit}.service.d").exists()


def test_shipped_unit_orders_before_the_standard_names():
    from helpers import REPO

    with open(f"{REPO}/systemd/k3snode.service") as f:
        before = [ln for ln in f.read().splitlines() if ln.startswith("Before=")]
    assert before == ["Before=" + " ".join(f"{u}.service" for u in ordering.SHIPPED_BEFORE)]


def test_check_and_apply_report_a_dropin_override(root):
    """As a user sees it: `k3snode check` and `apply` name the drop-in that replaces
    node-external-ip after k3snode's config.yaml."""
    (root / "etc/k3snode/config.toml").write_text('[node]\nrole = "server"\nmesh = "none"\n')
    cfg = root / "etc/rancher/k3s/config.yaml"
    (root / "etc/rancher/k3s/config.yaml.d").mkdir(parents=True, exist_ok=True)
    user = root / "etc/rancher/k3s/config.yaml.d/50-user.yaml"
    user.write_text("node-external-ip: 198.51.100.9\nnode-label+: [a=b]\n")
    args = [
        "--config",
        str(root / "etc/k3snode/config.toml"),
        "--state-dir",
        str(root / "var/lib/k3snode"),
        "--k3s-config",
        str(cfg),
        "--external-ip",
        "203.0.113.5",
        "--provider",
        "none",
    ]
    r = run_k3snode("apply", "--no-restart", *args)
    assert r.returncode == 0, r.stderr
    want = f"{user}:1: node-external-ip replaces k3snode's value from {cfg}"
    assert [ln for ln in r.stderr.splitlines() if want in ln] == [
        f"k3snode: warning: {want} (K3s reads it later); K3s ends up with '198.51.100.9'"
    ]
    assert "node-label" not in r.stderr  # a user's key+ is no mistake
    r = run_k3snode("check", *args)
    assert [ln for ln in r.stdout.splitlines() if want in ln] == [
        f"warning  k3s        {want} (K3s reads it later); K3s ends up with '198.51.100.9'"
    ]
    assert user.read_text() == "node-external-ip: 198.51.100.9\nnode-label+: [a=b]\n"


def test_health_observation(tmp_path):
    """The daemon's `k3s-config` check: ok with notes as facts; not ok while a drop-in replaces
    one of k3snode's keys."""
    assert overrides.observe in observers()
    d = k3s_dir(tmp_path, "node-external-ip: [203.0.113.5]\nnode-name: a\nnode-name: b\n")
    env = {
        "K3SNODE_MESH": "none",
        "K3SNODE_K3S_CONFIG": str(d / "config.yaml"),
        "K3SNODE_PATHS_STATE_DIR": str(tmp_path / "state"),
    }
    (obs,) = overrides.observe(load(None, env=env), root=str(tmp_path))
    assert (obs.check, obs.ok) == ("k3s-config", True)
    assert obs.detail.startswith(f"K3s reads 1 config file from {d}/config.yaml")
    assert "node-name is set twice" in obs.facts["note 1"]
    (d / "config.yaml.d/99-late.yml").write_text("node-external-ip: 198.51.100.1\n")
    (obs,) = overrides.observe(load(None, env=env), root=str(tmp_path))
    assert not obs.ok
    assert obs.detail.startswith(f"{d}/config.yaml.d/99-late.yml:1: node-external-ip replaces ")
    assert obs.facts["files"] == f"{d}/config.yaml, {d}/config.yaml.d/99-late.yml"


def test_apply_cannot_write_the_ordering_dropin_says_so_in_one_line(root):
    """A read-only /etc/systemd/system (a private mount namespace with a read-only tmpfs over
    it): one warning line, no traceback, the K3s config still written."""
    import os
    import shutil
    import subprocess
    import sys

    from helpers import REPO, clean_env

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare (a private mount namespace)")
    (root / "etc/k3snode/config.toml").write_text(
        '[k3s]\nunit = "k3s-edge"\n[node]\nmesh = "none"\n'
    )
    script = 'mount -t tmpfs -o ro k3snode-test /etc/systemd/system && exec "$@"'
    r = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
         sys.executable, "-m", "k3snode", "apply", "--no-restart",
         "--config", str(root / "etc/k3snode/config.toml"),
         "--state-dir", str(root / "var/lib/k3snode"),
         "--k3s-config", str(root / "etc/rancher/k3s/config.yaml"),
         "--external-ip", "203.0.113.5"],
        capture_output=True, text=True, env=clean_env(PYTHONPATH=REPO), timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    warn = "k3snode: warning: cannot write /etc/systemd/system/k3s-edge.service.d/10-k3snode.conf"
    assert [ln for ln in r.stderr.splitlines() if "10-k3snode.conf" in ln] == [
        f"{warn} (Read-only file system): K3s may start before k3snode has written its config"
    ]
    assert "203.0.113.5" in (root / "etc/rancher/k3s/config.yaml").read_text()
    assert not os.path.exists("/etc/systemd/system/k3s-edge.service.d")  # the host untouched


def test_a_periodic_load_makes_no_failing_syscall(tmp_path):
    """The health checks load the view every 30 s: missing environment files, units and
    drop-in directories are learned from listings, not by failing opens (measured before: 8
    ENOENT per load on a node without K3s)."""
    import json
    import subprocess
    import sys

    from helpers import REPO, clean_env, have

    if not have("strace"):
        pytest.skip("needs strace")
    own = tmp_path / "etc/rancher/k3s/config.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("node-label: [a=b]\n")
    script = (
        "import json, sys\nfrom k3snode.k3s import effective\n"
        "effective.load(sys.argv[1], 'k3s', root=sys.argv[2])  # imports happen here\n"
        "print('k3snode-begin', file=sys.stderr, flush=True)\n"
        "view = effective.load(sys.argv[1], 'k3s', root=sys.argv[2])\n"
        "print('k3snode-end', file=sys.stderr, flush=True)\n"
        "print(json.dumps([view.files, view.values()]))\n"
    )
    trace = tmp_path / "trace"
    r = subprocess.run(["strace", "-f", "-qq", "-o", str(trace), sys.executable, "-c", script,
                        str(own), str(tmp_path)], capture_output=True, text=True,
                       env=clean_env(PYTHONPATH=REPO))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [[str(own)], {"node-label": ["a=b"]}]
    lines = trace.read_text().splitlines()
    begin = next(i for i, ln in enumerate(lines) if "k3snode-begin" in ln)
    end = next(i for i, ln in enumerate(lines) if "k3snode-end" in ln)
    traced = lines[begin + 1 : end]
    assert any(str(own) in ln and "open" in ln for ln in traced)  # the file was read
    assert [ln for ln in traced if " = -1 E" in ln] == []
