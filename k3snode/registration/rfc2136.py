"""RFC 2136 dynamic updates with TSIG, through dnspython (imported here, and only when used).

One update per change, sent to ``[registration] server``::

    zone  <zone>
    prereq  <name> CNAME does not exist        (a CNAME would silently swallow the A/AAAA add)
    delete  <name> A|AAAA <the address this server published last>   (exactly that record)
    add     <name> <ttl> A|AAAA <the address now>

Deleting one RR and adding one RR touch nothing else of the RRset, so several servers share the
name round-robin; the server applies all of it or nothing. The whole exchange (finding the zone
when unset, resolving the server's name, the update) is bounded by ``[registration] timeout``.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import TYPE_CHECKING, Any

from k3snode.registration import keyfile
from k3snode.registration.errors import RegistrationError

if TYPE_CHECKING:
    from k3snode.config.model import RegistrationSettings

MISSING = (
    "registration needs dnspython: install python3-dnspython (Debian, Ubuntu), "
    "python3-dns (Fedora, EPEL) or pip install 'k3snode[registration]'"
)

# What an answer means, for the one line an operator reads.
_RCODE_HINTS = {
    "NOTAUTH": "the server is not authoritative for zone {zone} or does not accept key {key}",
    "REFUSED": "the zone's update policy does not let key {key} change {name} A/AAAA "
    "(or the zone takes no updates)",
    "YXRRSET": "{name} is a CNAME; k3snode publishes A/AAAA records only",
    "NOTZONE": "{name} is not in zone {zone}; set [registration] zone",
    "SERVFAIL": "the server failed; see its log",
    "FORMERR": "the server did not understand the update",
    "NOTIMP": "the server does not implement dynamic updates",
}


def _dns() -> Any:
    try:
        import dns.exception
        import dns.flags
        import dns.message
        import dns.name
        import dns.query
        import dns.rcode
        import dns.rdatatype
        import dns.tsig
        import dns.update
    except ImportError:
        raise RegistrationError(MISSING) from None
    return dns


def split_server(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    return host.strip("[]"), int(port)


def rdtype(address: str) -> str:
    return "AAAA" if ipaddress.ip_address(address).version == 6 else "A"


class Rfc2136:
    def __init__(self, reg: RegistrationSettings) -> None:
        self.reg = reg
        self.host, self.port = split_server(reg.server)
        self._key_name = ""

    def where(self) -> str:
        return self.reg.server

    def _fail(self, answer: str) -> RegistrationError:
        return RegistrationError(f"{self.reg.name} at {self.reg.server}: {answer}")

    def _dns(self) -> Any:
        try:
            return _dns()
        except RegistrationError as e:
            raise self._fail(str(e)) from None

    # -- the exchange ------------------------------------------------------------------------

    def _address(self, deadline: float) -> str:
        """The server's address: an IP as given, else its name resolved (first answer)."""
        try:
            return str(ipaddress.ip_address(self.host))
        except ValueError:
            pass
        if time.monotonic() >= deadline:
            raise self._fail("no time left to resolve the server's name")
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        except socket.gaierror as e:
            raise self._fail(f"cannot resolve the server's name ({e.strerror})") from None
        return infos[0][4][0]

    def _send(self, dns: Any, msg: Any, where: str, deadline: float) -> Any:
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._fail(f"no answer within {self.reg.timeout:g}s")
        try:
            resp = dns.query.udp(msg, where, timeout=left, port=self.port, ignore_unexpected=True)
            if resp.flags & dns.flags.TC:
                left = max(0.1, deadline - time.monotonic())
                resp = dns.query.tcp(msg, where, timeout=left, port=self.port)
        except dns.exception.Timeout:
            raise self._fail(f"no answer within {self.reg.timeout:g}s (timeout)") from None
        except dns.tsig.PeerBadKey:
            raise self._fail(
                f"NOTAUTH/BADKEY: the server does not know TSIG key {self._key_name!r}"
            ) from None
        except dns.tsig.PeerBadSignature:
            raise self._fail(
                f"NOTAUTH/BADSIG: the server rejects the signature of TSIG key {self._key_name!r} "
                "(wrong secret or algorithm)"
            ) from None
        except dns.tsig.PeerBadTime:
            raise self._fail(
                "NOTAUTH/BADTIME: the clocks of this node and the server differ"
            ) from None
        except (dns.tsig.BadSignature, dns.tsig.BadTime, dns.tsig.PeerError) as e:
            raise self._fail(f"the answer's TSIG signature does not verify ({e})") from None
        except ConnectionRefusedError:
            raise self._fail("unreachable (connection refused)") from None
        except OSError as e:
            raise self._fail(f"unreachable ({e.strerror or e})") from None
        except dns.exception.DNSException as e:
            raise self._fail(f"bad answer ({e.__class__.__name__}: {e})") from None
        return resp

    def _zone(self, dns: Any, where: str, deadline: float) -> str:
        """The zone holding the name: the owner of the SOA the server answers with."""
        name = dns.name.from_text(self.reg.name)
        q = dns.message.make_query(name, "SOA")
        q.flags &= ~dns.flags.RD
        resp = self._send(dns, q, where, deadline)
        rcode = dns.rcode.to_text(resp.rcode())
        if rcode not in ("NOERROR", "NXDOMAIN"):
            raise self._fail(
                f"{rcode} to a query for {self.reg.name} SOA (is the server authoritative for its "
                "zone? or set [registration] zone)"
            )
        for rrset in (*resp.answer, *resp.authority):
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset.name.to_text(omit_final_dot=True)
        raise self._fail("the server named no zone for it (no SOA); set [registration] zone")

    # -- Backend -----------------------------------------------------------------------------

    def replace(self, remove: tuple[str, ...], add: tuple[str, ...]) -> None:
        dns = self._dns()
        try:
            key = keyfile.read(self.reg.key_file, self.reg.algorithm)
        except keyfile.KeyFileError as e:
            raise self._fail(str(e)) from None
        self._key_name = key.name
        deadline = time.monotonic() + self.reg.timeout
        where = self._address(deadline)
        zone = self.reg.zone or self._zone(dns, where, deadline)
        tsig = dns.tsig.Key(key.name, key.secret.reveal(), key.algorithm)
        msg = dns.update.UpdateMessage(zone, keyring=tsig)
        name = dns.name.from_text(self.reg.name)
        msg.absent(name, "CNAME")
        for a in remove:
            if a not in add:
                msg.delete(name, rdtype(a), a)
        for a in add:
            msg.add(name, self.reg.ttl, rdtype(a), a)
        resp = self._send(dns, msg, where, deadline)
        rcode = dns.rcode.to_text(resp.rcode())
        if rcode != "NOERROR":
            hint = _RCODE_HINTS.get(rcode, "")
            hint = hint.format(zone=zone, key=repr(key.name), name=self.reg.name)
            raise self._fail(rcode + (f" ({hint})" if hint else ""))

    def lookup(self) -> tuple[str, ...]:
        dns = self._dns()
        deadline = time.monotonic() + self.reg.timeout
        where = self._address(deadline)
        out: list[str] = []
        for t in ("A", "AAAA"):
            q = dns.message.make_query(self.reg.name, t)
            q.flags &= ~dns.flags.RD
            resp = self._send(dns, q, where, deadline)
            for rrset in resp.answer:
                if rrset.rdtype == dns.rdatatype.from_text(t):
                    out.extend(sorted(r.address for r in rrset))
        return tuple(out)
