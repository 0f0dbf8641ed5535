"""WireGuard keys: X25519 (RFC 7748) in pure Python, and the on-disk private key file.

No new dependency and no ``wg genkey``/``wg pubkey`` child processes: the Montgomery ladder below
is the RFC's own pseudo-code over Python integers and takes about a millisecond (see
``benchmarks/wireguard.py``). Python integers are not constant-time; this only ever runs on the
node's own keys, locally (at start and when reading a userspace device), so there is no remote
timing oracle.
"""

from __future__ import annotations

import base64
import binascii
import os

from k3snode import fileio
from k3snode.secret import Secret

_P = 2**255 - 19
_A24 = 121665
KEY_LEN = 32


class BadKey(ValueError):
    """A key file or key string that is not a WireGuard key."""


def _clamp(k: bytes) -> int:
    b = bytearray(k)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return int.from_bytes(b, "little")


def x25519(scalar: bytes, u: bytes) -> bytes:
    """RFC 7748 section 5: the X25519 function."""
    if len(scalar) != KEY_LEN or len(u) != KEY_LEN:
        raise ValueError("X25519 takes 32-byte inputs")
    k = _clamp(scalar)
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in range(254, -1, -1):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a = x2 + z2
        aa = a * a % _P
        b = x2 - z2
        bb = b * b % _P
        e = aa - bb
        c = x3 + z3
        d = x3 - z3
        da = d * a % _P
        cb = c * b % _P
        x3 = (da + cb) ** 2 % _P
        z3 = x1 * (da - cb) ** 2 % _P
        x2 = aa * bb % _P
        z2 = e * (aa + _A24 * e) % _P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(KEY_LEN, "little")


BASE = (9).to_bytes(KEY_LEN, "little")


def decode(key: str) -> bytes:
    """A base64 WireGuard key as 32 bytes; ValueError otherwise."""
    try:
        raw = base64.b64decode(key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadKey("not base64") from None
    if len(raw) != KEY_LEN:
        raise BadKey(f"decodes to {len(raw)} bytes, not 32")
    return raw


def encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def generate_private() -> Secret:
    """A fresh private key (clamped, as ``wg genkey`` writes it)."""
    k = _clamp(os.urandom(KEY_LEN)).to_bytes(KEY_LEN, "little")
    return Secret(encode(k))


def public_key(private: Secret) -> str:
    return encode(x25519(decode(private.reveal()), BASE))


def read(path: str) -> Secret:
    """The private key in ``path``, changing nothing. Raises FileNotFoundError, or BadKey naming
    the file when it holds something that is not a key."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except UnicodeDecodeError:
        raise BadKey(f"{path}: not a WireGuard private key (not text)") from None
    try:
        decode(text)
    except BadKey as e:
        raise BadKey(f"{path}: not a WireGuard private key ({e})") from None
    return Secret(text)


def load_or_create(path: str) -> tuple[Secret, bool]:
    """The private key in ``path``; created (0600, atomically) when missing. Returns (key, created).

    Raises BadKey naming the file when it holds something that is not a key.
    """
    try:
        key = read(path)
    except FileNotFoundError:
        if _create_exclusive(path, generate_private()):
            return read(path), True
        key = read(path)  # another process created it first: use that one, as it will
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o600)  # a key readable by others is narrowed, not used as is
    return key, False


def _create_exclusive(path: str, key: Secret) -> bool:
    """Write ``key`` to ``path`` complete and 0600, unless ``path`` appeared meanwhile: the key goes
    to a temporary file that is then hard-linked into place, which fails if the name exists. So
    two processes starting at once (the daemon and ``k3snode wireguard pubkey``) agree on one key,
    and a reader never sees a half-written one. True when this call created it."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = os.path.join(
        directory,
        f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}{fileio.TMP_SUFFIX}",
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, (key.reveal() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
        created = True
    except FileExistsError:
        created = False
    finally:
        os.unlink(tmp)
    fileio.fsync_dir(directory)
    return created
