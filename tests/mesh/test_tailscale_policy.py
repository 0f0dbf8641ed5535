"""``k3snode tailscale-policy``: the tailnet policy snippet from the settings, valid (Hu)JSON."""

from __future__ import annotations

import json
import re

from helpers import clean_env, run_k3snode


def hujson_to_json(text: str) -> str:
    """HuJSON → JSON for what the command prints: // comments and trailing commas removed."""
    text = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("//"))
    return re.sub(r",(\s*[}\]])", r"\1", text)


def policy(tmp_path, toml: str, *args: str):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    res = run_k3snode("tailscale-policy", "--config", str(cfg), *args, env=clean_env())
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    return res.stdout


def test_defaults(tmp_path):
    out = policy(tmp_path, "")
    assert out.startswith("// K3s over Tailscale")
    doc = json.loads(hujson_to_json(out))
    assert doc == {
        "tagOwners": {"tag:k3s": ["autogroup:admin"]},
        "autoApprovers": {"routes": {"10.42.0.0/16": ["tag:k3s"]}},
        "acls": [
            {
                "action": "accept",
                "src": ["tag:k3s", "10.42.0.0/16"],
                "dst": ["tag:k3s:*", "10.42.0.0/16:*"],
            }
        ],
    }


def test_dual_stack_and_own_tag(tmp_path):
    out = policy(
        tmp_path,
        '[tailscale]\ntag = "tag:prod-k3s"\npod_cidrs = ["10.52.0.0/16", "2001:cafe:52::/56"]\n',
        "--json",
    )
    doc = json.loads(out)  # --json: plain JSON, no comment header
    assert doc["autoApprovers"]["routes"] == {
        "10.52.0.0/16": ["tag:prod-k3s"],
        "2001:cafe:52::/56": ["tag:prod-k3s"],
    }
    (rule,) = doc["acls"]
    assert rule["src"] == ["tag:prod-k3s", "10.52.0.0/16", "2001:cafe:52::/56"]
    assert rule["dst"] == ["tag:prod-k3s:*", "10.52.0.0/16:*", "2001:cafe:52::/56:*"]
    assert doc["tagOwners"] == {"tag:prod-k3s": ["autogroup:admin"]}


def test_bad_tag_is_a_settings_mistake(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[tailscale]\ntag = "k3s"\n')
    res = run_k3snode("tailscale-policy", "--config", str(cfg), env=clean_env())
    assert res.returncode == 2 and res.stdout == ""
    assert "[tailscale] tag" in res.stderr and "Traceback" not in res.stderr
