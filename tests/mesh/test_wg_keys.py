"""X25519 through ``cryptography``: RFC 7748's vectors, agreement with ``wg pubkey``, the key cache,
the key file."""

from __future__ import annotations

import os
import stat
import subprocess
import time

import pytest
from helpers import have

from k3snode.mesh.wg import keys


def test_rfc7748_vectors():
    # RFC 7748 section 5.2
    k = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert keys.x25519(k, u).hex() == (
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    )
    # section 6.1: Alice's and Bob's public keys and their shared secret
    a = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    b = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    a_pub = keys.x25519(a, keys.BASE)
    b_pub = keys.x25519(b, keys.BASE)
    assert a_pub.hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    assert b_pub.hex() == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    assert keys.x25519(a, b_pub).hex() == shared == keys.x25519(b, a_pub).hex()


def test_public_key_cache_derives_once_per_key_and_keeps_no_key():
    cache = keys.PublicKeyCache()
    a, b = keys.generate_private(), keys.generate_private()
    first = cache.public_key(a)
    assert first == keys.public_key(a)
    assert cache.public_key(a) is first  # the same object: not derived again
    assert cache.public_key(b) == keys.public_key(b) != keys.public_key(a)  # a new key: derived
    raw = keys.decode(b.reveal())
    assert raw not in repr(vars(cache)).encode() and b.reveal() not in repr(vars(cache))


def test_cryptography_is_imported_only_when_a_key_is_derived():
    import subprocess
    import sys

    from helpers import REPO, clean_env

    code = (
        "import sys; from k3snode.mesh.wg import keys; a = 'cryptography' in sys.modules; "
        "keys.public_key(keys.generate_private()); print(a, 'cryptography' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], env=clean_env(), cwd=REPO,
                       capture_output=True, text=True, check=True)  # fmt: skip
    assert r.stdout.split() == ["False", "True"]


@pytest.mark.skipif(not have("wg"), reason="needs wg (wireguard-tools)")
def test_public_key_agrees_with_wg_pubkey():
    for _ in range(5):
        priv = keys.generate_private()
        raw = keys.decode(priv.reveal())
        assert raw[0] & 7 == 0 and raw[31] & 0x80 == 0 and raw[31] & 0x40  # clamped
        # the secret goes through stdin, never argv
        out = subprocess.run(
            ["wg", "pubkey"], input=priv.reveal(), capture_output=True, text=True, check=True
        )
        assert keys.public_key(priv) == out.stdout.strip()


def test_load_or_create(tmp_path):
    path = str(tmp_path / "sub" / "underlay.key")
    key, created = keys.load_or_create(path)
    assert created
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again, created2 = keys.load_or_create(path)
    assert not created2 and again == key
    assert "*" in repr(key) and key.reveal() not in repr(key)


def test_load_fixes_a_readable_key_file(tmp_path):
    path = tmp_path / "k"
    path.write_text(keys.generate_private().reveal() + "\n")
    path.chmod(0o644)
    keys.load_or_create(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", [b"not a key\n", b"", b"\xff\xfe", b"YWJj\n"])
def test_load_rejects_garbage_naming_the_file(tmp_path, content):
    path = tmp_path / "k"
    path.write_bytes(content)
    with pytest.raises(keys.BadKey, match=str(path)):
        keys.load_or_create(str(path))
    assert path.read_bytes() == content  # never overwritten


def test_processes_starting_at_once_agree_on_one_key(tmp_path):
    """Eight processes create the key at the same moment: all end up with the one on disk."""
    import sys

    from helpers import REPO, clean_env

    path = tmp_path / "k" / "underlay.key"
    code = (
        "import sys, time; from k3snode.mesh.wg import keys; "
        "t = float(sys.argv[2]); time.sleep(max(0, t - time.time())); "
        "k, created = keys.load_or_create(sys.argv[1]); print(keys.public_key(k), created)"
    )
    start = str(time.time() + 1.0)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path), start],
            env=clean_env(),
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(8)
    ]
    outs = [p.communicate(timeout=30)[0].split() for p in procs]
    on_disk = keys.public_key(keys.read(str(path)))
    assert {o[0] for o in outs} == {on_disk}
    assert [o[1] for o in outs].count("True") == 1
    assert os.listdir(path.parent) == ["underlay.key"]  # no temporary file left
