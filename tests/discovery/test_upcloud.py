"""UpCloud: v1.json; the public interface's non-floating addresses; floating IPs are ignored."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, run_discovery


def test_floating_ip_is_never_the_node_address(fake_imds):
    fake = fake_imds("upcloud", floating_ipv4="94.237.9.9")
    found = run_discovery(fake, "upcloud")
    assert (found.provider, found.public_ipv4, found.public_ipv6) == (
        "upcloud", "94.237.1.2", "2a04:3540:1000:310::5",
    )  # fmt: skip
    assert found.private_ipv4 == "10.5.0.2"
    assert any("floating 94.237.9.9 ignored" in n for n in found.notes)


def test_only_a_floating_ip_means_none(fake_imds):
    fake = fake_imds("upcloud", ipv4=None, ipv6=None, floating_ipv4="94.237.9.9")
    found = run_discovery(fake, "upcloud")
    assert not_from_metadata(found, "ipv4") and not_from_metadata(found, "ipv6")
