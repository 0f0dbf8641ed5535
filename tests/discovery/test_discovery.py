"""discover() wiring: static first, then the recognised provider's metadata for what is missing;
nothing contacted without a recognised cloud; the ``detect --json`` shape."""

from __future__ import annotations

import json
import re

import pytest
from discovery_helpers import paths, run_discovery
from fakes import dmi_dir
from fakes.imds import GARBAGE, PROVIDERS
from helpers import clean_env, run_k3snode


def test_static_family_is_kept_and_metadata_fills_the_other(fake_imds):
    fake = fake_imds("aws")
    found = run_discovery(fake, "aws", external_ips="3.120.45.99")
    assert found.public_ipv4 == "3.120.45.99" and found.public_ipv6 == "2a05:d014:abc:d00::10"
    assert found.sources == {"ipv4": "static", "ipv6": "metadata"}
    assert found.to_json()["sources"] == {"ipv4": "static", "ipv6": "metadata"}


def test_both_static_means_no_metadata_request(fake_imds):
    fake = fake_imds("aws")
    found = run_discovery(fake, "aws", external_ips="3.120.45.99,2a05:d014::99")
    assert found.sources == {"ipv4": "static", "ipv6": "static"}
    assert found.notes == ()
    assert fake.requests == []


def test_private_static_address_is_used_with_a_warning(caplog):
    found = run_discovery(None, "baremetal", external_ips="10.0.0.5,2a01:4f8::5")
    assert (found.public_ipv4, found.public_ipv6) == ("10.0.0.5", "2a01:4f8::5")
    assert "static external address 10.0.0.5 is private (RFC 1918); used as given" in caplog.text


def test_bare_metal_contacts_no_metadata_service(fake_imds):
    fake = fake_imds("aws")
    for name in ("baremetal", "baremetal-dell", "kvm", "hyperv"):
        found = run_discovery(fake, name)
        assert found.provider is None
        assert "metadata" not in found.sources.values()
        assert any("metadata not asked" in n for n in found.notes)
    assert fake.requests == []


def test_provider_none_contacts_nothing_even_on_a_cloud(fake_imds):
    fake = fake_imds("aws")
    found = run_discovery(fake, "aws", provider="none")
    assert found.provider is None and fake.requests == []


def test_provider_named_explicitly_is_asked_without_dmi(fake_imds):
    fake = fake_imds("scaleway")
    found = run_discovery(fake, "baremetal", provider="scaleway")
    assert (found.provider, found.public_ipv4) == ("scaleway", "51.15.1.2")
    assert paths(fake) == ["/conf?format=json"]


def test_metadata_failure_is_reported_and_discovery_still_answers(fake_imds):
    fake = fake_imds("aws", mode="disabled")
    found = run_discovery(fake, "aws")
    out = found.to_json()
    assert out["provider"] == "aws"
    assert "disabled" in out["error"]


def test_detect_json_through_the_cli(fake_imds):
    fake = fake_imds("gcp", ipv4="34.77.12.40", ipv6=None)
    proc = run_k3snode(
        "detect", "--json", "--dmi-dir", dmi_dir("gcp"), "--metadata-endpoint", fake.url,
        env=clean_env(HTTP_PROXY="http://127.0.0.1:9"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["provider"] == "gcp" and out["source"] == "metadata"
    assert out["public_ipv4"] == "34.77.12.40" and out["public_ipv6"] is None
    assert set(out) >= {"provider", "source", "public_ipv4", "public_ipv6", "private_ipv4"}
    assert any("no public IPv6" in n for n in out["notes"])


def test_detect_rejects_a_bad_metadata_endpoint():
    proc = run_k3snode("detect", "--metadata-endpoint", "169.254.169.254/latest")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--metadata-endpoint" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("provider", PROVIDERS)
def test_garbage_answers_never_raise_and_are_never_taken(fake_imds, provider):
    fake = fake_imds(provider, mode="garbage")
    for shape in range(len(GARBAGE)):
        fake.set(garbage=shape)
        found = run_discovery(fake, "baremetal", provider=provider)
        assert "metadata" not in found.sources.values(), (shape, found)
        assert found.provider == provider
        assert "malformed" not in (found.error or ""), (shape, found.error)  # handled, not caught


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_dribbling_server_is_cut_off_within_the_discovery_timeout(fake_imds, provider):
    fake = fake_imds(provider, mode="slow")
    found = run_discovery(fake, "baremetal", provider=provider, timeout=1.0)
    assert "metadata" not in found.sources.values()
    assert re.search(r"no answer within (0\.\d|1\.0)s", found.error or ""), found.error


def test_detect_text_names_the_hop_limit_and_exits_1(fake_imds):
    fake = fake_imds("aws", mode="token-hang")
    proc = run_k3snode("detect", "--dmi-dir", dmi_dir("aws"), "--metadata-endpoint", fake.url,
                       "--provider", "aws")  # fmt: skip
    assert proc.returncode == 1
    assert "provider:     aws" in proc.stdout
    error = [line for line in proc.stdout.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "hop limit" in error[0]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_unknown_provider_is_a_one_line_settings_error():
    proc = run_k3snode("detect", "--provider", "amazon")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "--provider" in proc.stderr and "'amazon'" in proc.stderr


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure", "alibaba", "exoscale", "tencent"])
def test_a_session_skips_the_informational_private_address(fake_imds, provider):
    from discovery_helpers import load_settings

    from k3snode.discovery import Session, discover

    fake = fake_imds(provider)
    settings = load_settings(dmi_dir=dmi_dir(provider), metadata_endpoint=fake.url)
    once = discover(settings)
    asked_once = len(paths(fake))
    fake.clear_requests()
    polled = discover(settings, session=Session())
    assert once.private_ipv4  # (a poll's may still come from the host's own interface)
    assert (polled.public_ipv4, polled.public_ipv6) == (once.public_ipv4, once.public_ipv6)
    assert len(paths(fake)) == asked_once - 1


@pytest.mark.parametrize("provider", ["linode", "ibm"])
def test_a_session_keeps_the_token_so_a_poll_is_one_request(fake_imds, provider):
    from discovery_helpers import load_settings

    from k3snode.discovery import Session, discover

    fake = fake_imds(provider)
    settings = load_settings(dmi_dir=dmi_dir(provider), metadata_endpoint=fake.url)
    session = Session()
    first = discover(settings, session=session)
    assert len(paths(fake)) == 2 and first.error is None
    fake.clear_requests()
    again = discover(settings, session=session)
    assert (again.public_ipv4, again.public_ipv6, again.error) == (
        first.public_ipv4, first.public_ipv6, None
    )  # fmt: skip
    assert len(paths(fake)) == 1  # the kept token, no PUT
    (key,) = session.memo
    session.memo[key] = ("revoked", session.memo[key][1])
    fake.clear_requests()
    assert discover(settings, session=session).error is None
    assert len(paths(fake)) == 3  # refused, a new token, asked again
