"""Echo services over real HTTPS: family forced per request, at least two agreeing, answers judged,
certificates verified, proxies ignored."""

from __future__ import annotations

import ssl
import time

import pytest
from fakes.echo import EchoServer, make_cert
from fakes.listener import Listener

from k3snode.discovery import echo


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(str(tmp_path_factory.mktemp("echo")))


@pytest.fixture
def ctx(cert):
    return ssl.create_default_context(cafile=cert[0])


def servers(cert, *answers, host="127.0.0.1"):
    return [EchoServer(host, cert, answer=a) for a in answers]


def ask(services, families, ctx, budget=10.0):
    return echo.discover([s.url for s in services], families, time.monotonic() + budget, ctx)


def test_two_agreeing_services_are_enough(cert, ctx):
    srv = servers(cert, "5.75.1.2", "5.75.1.2 \n", "5.75.1.3")
    try:
        got = ask(srv, ["ipv4"], ctx)
    finally:
        for s in srv:
            s.close()
    assert got.ipv4 == "5.75.1.2"
    assert srv[2].requests == []  # quorum reached before the third was asked


def test_disagreement_gives_nothing(cert, ctx):
    srv = servers(cert, "5.75.1.2", "5.75.1.3")
    try:
        got = ask(srv, ["ipv4"], ctx)
    finally:
        for s in srv:
            s.close()
    assert got.ipv4 is None
    assert any("fewer than 2 services agree" in n for n in got.notes)


def test_wrong_family_private_and_html_answers_are_rejected(cert, ctx):
    srv = servers(cert, "2a01:4f8::5", "192.168.1.5", "<html><body>hi</body></html>", "5.75.1.2")
    try:
        got = ask(srv, ["ipv4"], ctx)
    finally:
        for s in srv:
            s.close()
    assert got.ipv4 is None
    text = "\n".join(got.notes)
    assert "IPv6 address where IPv4 was expected" in text
    assert "private (RFC 1918)" in text
    assert "not an IP address" in text


def test_family_is_forced_per_request(cert, ctx):
    v6 = servers(cert, "2a01:4f8::5", "2A01:4F8:0:0::5", host="::1")
    try:
        got = ask(v6, ["ipv4", "ipv6"], ctx)
    finally:
        for s in v6:
            s.close()
    assert got.ipv6 == "2a01:4f8::5"
    assert got.ipv4 is None  # an IPv6-only service cannot be asked for IPv4
    assert any("does not resolve for this family" in n for n in got.notes)


def test_untrusted_certificate_is_refused(cert):
    srv = servers(cert, "5.75.1.2", "5.75.1.2")
    try:
        got = ask(srv, ["ipv4"], ssl.create_default_context())
    finally:
        for s in srv:
            s.close()
    assert got.ipv4 is None
    assert any("TLS" in n for n in got.notes)


def test_proxies_are_ignored(cert, ctx, monkeypatch):
    srv = servers(cert, "5.75.1.2", "5.75.1.2")
    with Listener(("127.0.0.1", 0)) as proxy:
        for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(var, f"http://127.0.0.1:{proxy.ports[0]}")
        try:
            got = ask(srv, ["ipv4"], ctx)
        finally:
            for s in srv:
                s.close()
    assert got.ipv4 == "5.75.1.2"
    assert proxy.accepted == []


def test_no_service_is_asked_after_the_deadline(cert, ctx):
    srv = servers(cert, "5.75.1.2", "5.75.1.2")
    try:
        got = ask(srv, ["ipv4"], ctx, budget=0.0)
    finally:
        for s in srv:
            s.close()
    assert got.ipv4 is None
    assert all(s.requests == [] for s in srv)
