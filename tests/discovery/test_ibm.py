"""IBM Cloud VPC: token PUT (``Metadata-Flavor: ibm``, a version date, a JSON body), then the
instance document with the bearer token; no public address in the metadata (floating IPs are not
published), so both families go to the fallbacks with a note saying so."""

from __future__ import annotations

import json
import socket

from discovery_helpers import not_from_metadata, run_discovery
from fakes.imds import IBM_TOKEN


def test_token_flow_gives_the_private_address_and_says_the_floating_ip_is_not_published(
    fake_imds,
):
    fake = fake_imds("ibm")
    found = run_discovery(fake, "ibm")
    assert found.provider == "ibm" and found.error is None
    assert found.private_ipv4 == "10.240.0.4"
    assert not_from_metadata(found, "ipv4") and not_from_metadata(found, "ipv6")
    assert any("floating IP is not published" in n for n in found.notes)
    put, get = fake.requests
    assert put.method == "PUT" and put.path.startswith("/instance_identity/v1/token?version=20")
    assert put.headers["metadata-flavor"] == "ibm"
    assert get.path.startswith("/metadata/v1/instance?version=")
    assert get.headers["authorization"] == f"Bearer {IBM_TOKEN}"


def test_token_request_carries_its_lifetime_as_json(fake_imds):
    fake = fake_imds("ibm")
    run_discovery(fake, "ibm")
    put = fake.requests[0]
    assert put.headers["content-type"] == "application/json"
    assert int(put.headers["content-length"]) == len(json.dumps({"expires_in": 300}))


def test_refused_token_is_an_error_not_a_hang(fake_imds):
    found = run_discovery(fake_imds("ibm", mode="disabled"), "ibm")
    assert "HTTP 403" in found.error and "metadata service refused" in found.error


def test_token_that_never_comes_is_cut_off(fake_imds):
    found = run_discovery(fake_imds("ibm", mode="token-hang"), "ibm", timeout=1.0)
    assert "no answer within" in found.error


def test_service_switched_off_names_how_to_enable_it():
    with (
        socket.socket() as s
    ):  # a port nobody listens on: connection refused, like a disabled service
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    found = run_discovery(None, "ibm", metadata_endpoint=f"http://127.0.0.1:{port}", timeout=2.0)
    assert found.provider == "ibm"
    assert "connection refused" in found.error and "off by default" in found.error


def test_recognised_from_chassis_vendor_only(fake_imds):
    fake = fake_imds("ibm")
    assert run_discovery(fake, "ibm").provider == "ibm"
    assert run_discovery(fake, "kvm").provider is None
