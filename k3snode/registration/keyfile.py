"""The TSIG key file: read, checked (0600, one key, a known algorithm), never logged.

Three spellings are understood, so the file can be pasted from whichever server made the key:

- BIND's key clause, as ``tsig-keygen`` (BIND) and ``keymgr -t`` (Knot, with ``-b`` not given)
  print it: ``key "name" { algorithm hmac-sha256; secret "base64"; };``
- Knot's YAML: ``key: - id: name / algorithm: hmac-sha256 / secret: base64``
- one line ``[algorithm:]name:secret``, as ``nsupdate -y`` takes it (PowerDNS's
  ``pdnsutil generate-tsig-key`` prints name and secret).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat

from k3snode.config.checks import TSIG_ALGORITHMS
from k3snode.record import record
from k3snode.secret import Secret


class KeyFileError(Exception):
    """The key file is missing, unreadable, too open or not a key; one line naming the file."""


@record
class TsigKey:
    """A TSIG key for signed DNS updates."""

    name: str  # the key's name, as the DNS server knows it (an owner name, lower case)
    algorithm: str  # one of settings.TSIG_ALGORITHMS
    secret: Secret  # base64 text


_BIND = re.compile(
    r'key\s+"?(?P<name>[^"\s{]+)"?\s*\{(?P<body>[^}]*)\}\s*;?', re.IGNORECASE | re.DOTALL
)
_BIND_ALG = re.compile(r'algorithm\s+"?(?P<v>[\w.-]+)"?\s*;', re.IGNORECASE)
_BIND_SECRET = re.compile(r'secret\s+"(?P<v>[^"]+)"\s*;', re.IGNORECASE)
_KNOT = re.compile(
    r"^\s*-?\s*(?P<k>id|algorithm|secret)\s*:\s*['\"]?(?P<v>[^'\"\s#]+)", re.MULTILINE
)


def read(path: str, default_algorithm: str, label: str = "[registration] key_file") -> TsigKey:
    """The key in ``path``; raises KeyFileError. ``default_algorithm`` is for files without one."""
    where = f"{label}: {path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KeyFileError(f"{where} does not exist") from None
    except PermissionError:
        raise KeyFileError(f"{where}: cannot read (permission denied)") from None
    except OSError as e:
        raise KeyFileError(f"{where}: cannot read ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{where}: not a regular file")
        if st.st_mode & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            raise KeyFileError(
                f"{where}: readable by group or others (mode {mode:04o}); chmod 600 it"
            )
        raw = f.read(65536)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileError(f"{where}: not UTF-8 text") from None
    key = parse(text, default_algorithm)
    if isinstance(key, str):
        raise KeyFileError(f"{where}: {key}")
    return key


def parse(text: str, default_algorithm: str) -> TsigKey | str:
    """The key in ``text``, or why there is none (never quoting the secret)."""
    text = "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith(("#", "//"))
    )
    name = alg = secret = ""
    m = _BIND.search(text)
    if m:
        if len(_BIND.findall(text)) > 1:
            return "holds more than one key; k3snode needs exactly one"
        name = m["name"]
        a, s = _BIND_ALG.search(m["body"]), _BIND_SECRET.search(m["body"])
        alg = a["v"] if a else ""
        secret = s["v"] if s else ""
    elif re.search(r"^\s*key\s*:", text, re.MULTILINE):
        found = {}
        for km in _KNOT.finditer(text):
            if km["k"] in found:
                return "holds more than one key; k3snode needs exactly one"
            found[km["k"]] = km["v"]
        name, alg, secret = found.get("id", ""), found.get("algorithm", ""), found.get("secret", "")
    else:
        line = text.strip()
        if line.count("\n") or line.count(":") not in (1, 2):
            return (
                "not a TSIG key (a BIND key clause, Knot's key: list, or [algorithm:]name:secret)"
            )
        parts = line.split(":")
        if len(parts) == 3:
            alg, name, secret = parts
        else:
            name, secret = parts
    if not name or not secret:
        return "no key name or no secret in it"
    alg = (alg or default_algorithm).lower()
    if alg.endswith(".sig-alg.reg.int"):  # the old hmac-md5 owner-name spelling
        alg = alg.split(".", 1)[0]
    if alg not in TSIG_ALGORITHMS:
        return f"unknown TSIG algorithm {alg!r} (k3snode knows {', '.join(TSIG_ALGORITHMS)})"
    try:
        if not base64.b64decode(secret, validate=True):
            raise ValueError
    except (binascii.Error, ValueError):
        return f"the secret of key {name!r} is not base64"
    return TsigKey(name.rstrip(".").lower(), alg, Secret(secret))
