"""WireGuard keys: X25519 (RFC 7748) through ``cryptography``, and the on-disk private key file.

X25519 comes from ``cryptography`` (OpenSSL's constant-time implementation; python3-cryptography
in Debian 12 and RHEL 9 BaseOS), imported on first use: only the underlay and the userspace
backend derive keys, and ``k3snode detect`` should not pay for loading OpenSSL. No ``wg genkey`` or
``wg pubkey`` child processes, so a key never travels through argv or a pipe.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from k3snode import fileio
from k3snode.secret import Secret

KEY_LEN = 32
BASE = (9).to_bytes(KEY_LEN, "little")  # the base point's u-coordinate


class BadKey(ValueError):
    """A key file or key string that is not a WireGuard key."""


def _clamp(k: bytes) -> bytes:
    b = bytearray(k)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return bytes(b)


def x25519(scalar: bytes, u: bytes) -> bytes:
    """RFC 7748 section 5: the X25519 function (``scalar`` is clamped, as the RFC says)."""
    if len(scalar) != KEY_LEN or len(u) != KEY_LEN:
        raise ValueError("X25519 takes 32-byte inputs")
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )

    return X25519PrivateKey.from_private_bytes(scalar).exchange(
        X25519PublicKey.from_public_bytes(u)
    )


def _public(raw_private: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    # public_bytes(Raw, Raw): public_bytes_raw() needs cryptography 40, Debian 12 has 38
    key = X25519PrivateKey.from_private_bytes(raw_private).public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


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
    return Secret(encode(_clamp(os.urandom(KEY_LEN))))


def public_key(private: Secret) -> str:
    """The base64 public key of a base64 private key. Callers that ask repeatedly (every pass,
    every read of a device) keep the answer per key, see ``PublicKeyCache``."""
    return encode(_public(decode(private.reveal())))


def public_from_raw(raw_private: bytes) -> str:
    """The base64 public key of a raw 32-byte private key (as a UAPI ``get`` gives it, in hex)."""
    if len(raw_private) != KEY_LEN:
        raise BadKey(f"{len(raw_private)} bytes, not 32")
    return encode(_public(raw_private))


class PublicKeyCache:
    """The public key of the last private key seen, derived once per key, not once per pass.

    Owned by whoever reads the key repeatedly (the underlay keeper, a userspace backend). Holds a
    digest of the private key, never the key itself."""

    def __init__(self) -> None:
        self._last: tuple[bytes, str] | None = None  # (sha256 of the private key, public key)

    def public_of(self, raw_private: bytes) -> str:
        digest = hashlib.sha256(raw_private).digest()
        if self._last is None or not hmac.compare_digest(self._last[0], digest):
            self._last = (digest, public_from_raw(raw_private))
        return self._last[1]

    def public_key(self, private: Secret) -> str:
        return self.public_of(decode(private.reveal()))


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
