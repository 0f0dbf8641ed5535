"""What every provider module shares: the answer it gives and the rules for reading values.

A provider module declares ``ID``, ``BASE`` (the metadata service's default scheme://host:port),
``recognise(dmi) -> bool`` (no network) and ``fetch(client, settings) -> Answer``.

Per family, metadata either gives an address, or positively says there is none (404, an empty
body, ``""``, an empty list — the node has no public address of that family, and no echo service
may be asked), or says nothing (the provider does not publish that family, or the value was
rejected): then the fallbacks may fill it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from k3snode import addresses, bounded
from k3snode.discovery.errors import MetadataError
from k3snode.record import record

if TYPE_CHECKING:
    from k3snode.discovery.http import Client, Response

FAMILIES = {"ipv4": 4, "ipv6": 6}


@record
class Answer:
    """A provider's answer."""

    ipv4: str | None = None
    ipv6: str | None = None
    none: frozenset[str] = frozenset()  # families metadata says the node has no public address of
    private_ipv4: str | None = None
    notes: tuple[str, ...] = ()

    def get(self, fam: str) -> str | None:
        return self.ipv4 if fam == "ipv4" else self.ipv6


class Reading:
    """Collects one provider's findings; every candidate is judged before it is kept."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.found: dict[str, str] = {}
        self.none: set[str] = set()
        self.notes: list[str] = []
        self.private_ipv4: str | None = None

    def offer(self, fam: str, value: Any, what: str) -> bool:
        """Keep ``value`` as the public address of ``fam`` if it is one; else note why not."""
        if fam in self.found:
            return False
        if not isinstance(value, str):
            self.notes.append(f"{self.provider} {what}: rejected: not a string ({value!r:.40})")
            return False
        judged = addresses.judge(value, want_family=FAMILIES[fam])
        if judged.ok and judged.address:
            self.found[fam] = judged.address
            self.none.discard(fam)
            return True
        shown = judged.address or _preview(value)
        self.notes.append(f"{self.provider} {what}: {shown} rejected: {judged.problem}")
        return False

    def say_none(self, fam: str, what: str) -> None:
        if fam not in self.found and fam not in self.none:
            self.none.add(fam)
            self.notes.append(f"{self.provider} metadata: no public {_fam(fam)} ({what})")

    def private(self, value: Any) -> None:
        if self.private_ipv4 is None and isinstance(value, str) and value.strip():
            judged = addresses.judge(value, want_family=4)
            if judged.address and judged.family == 4:
                self.private_ipv4 = judged.address

    def text_leaf(self, fam: str, resp: Response, what: str) -> None:
        """A text leaf: 404 or an empty body means none; 200 with a body is a candidate."""
        if resp.status == 404:
            self.say_none(fam, f"{what}: 404")
        elif resp.status == 200:
            body = resp.text.strip()
            if body:
                self.offer(fam, body, what)
            else:
                self.say_none(fam, f"{what}: empty")
        else:
            raise unexpected(resp, what)

    def answer(self) -> Answer:
        return Answer(
            ipv4=self.found.get("ipv4"),
            ipv6=self.found.get("ipv6"),
            none=frozenset(self.none),
            private_ipv4=self.private_ipv4,
            notes=tuple(self.notes),
        )


TOKEN_RENEW = 60.0  # seconds: a kept token is replaced this long before it expires


def session_token(
    client: Client, name: str, ask: Callable[[], tuple[str, float]]
) -> tuple[str, bool]:
    """(token, kept): a metadata token kept in ``client.memo`` (the daemon's discovery session)
    while more than ``TOKEN_RENEW`` seconds of it are left, else a new one from ``ask()`` →
    (token, lifetime in seconds). ``kept`` tells the caller that a 401 may mean a revoked token
    (``forget_token``, then ask again once)."""
    key = f"{name} token {client.where}"
    kept = client.memo.get(key)
    if kept and kept[1] - client.clock() > TOKEN_RENEW:
        return kept[0], True
    token, lifetime = ask()
    client.memo[key] = (token, client.clock() + lifetime)
    return token, False


def forget_token(client: Client, name: str) -> None:
    client.memo.pop(f"{name} token {client.where}", None)


def unexpected(resp: Response, what: str) -> MetadataError:
    return MetadataError(f"{what}: unexpected HTTP {resp.status} {_preview(resp.text)}")


def parse_json(resp: Response, what: str) -> Any:
    """The JSON body of a 200 answer, or MetadataError naming what was wrong."""
    if resp.status != 200:
        raise unexpected(resp, what)
    try:
        return bounded.load_json(resp.body)
    except bounded.TooComplex as e:
        raise MetadataError(f"{what}: refused: {e}") from None
    except ValueError:
        raise MetadataError(f"{what}: not JSON: {_preview(resp.text)}") from None


def dig(data: Any, *keys: Any) -> Any:
    """``data[k1][k2]…`` or None when any step is missing or of the wrong type."""
    for k in keys:
        if isinstance(k, int):
            if not isinstance(data, list) or not -len(data) <= k < len(data):
                return None
        elif not isinstance(data, dict):
            return None
        data = data[k] if isinstance(k, int) else data.get(k)
    return data


def as_list(value: Any) -> list:
    """``value`` when it is a list, else [] (garbage-shaped documents are common enough)."""
    return value if isinstance(value, list) else []


def _fam(fam: str) -> str:
    return "IPv4" if fam == "ipv4" else "IPv6"


def _preview(text: Any, limit: int = 40) -> str:
    s = str(text).strip().replace("\n", "\\n").replace("\r", "\\r")
    return repr(s if len(s) <= limit else s[:limit] + "…")
