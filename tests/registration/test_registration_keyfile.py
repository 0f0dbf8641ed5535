"""The TSIG key file: the spellings BIND, Knot and nsupdate -y use; 0600 or refused; the secret
never in a message."""

from __future__ import annotations

import os

import pytest

from k3snode.registration import keyfile

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="

BIND = f"""key "k3snode-key" {{
\talgorithm hmac-sha512;
\tsecret "{SECRET}";
}};
"""
KNOT = f"""# keymgr -t k3snode-key hmac-sha384
key:
  - id: k3snode-key
    algorithm: hmac-sha384
    secret: {SECRET}
"""


def write(tmp_path, text, mode=0o600):
    p = tmp_path / "tsig.key"
    p.write_text(text)
    os.chmod(p, mode)
    return str(p)


@pytest.mark.parametrize(
    "text, alg",
    [
        (BIND, "hmac-sha512"),
        (KNOT, "hmac-sha384"),
        (f"hmac-sha224:k3snode-key:{SECRET}\n", "hmac-sha224"),
        (f"k3snode-key:{SECRET}", "hmac-sha256"),  # the default algorithm
        (f'key k3snode-key {{ secret "{SECRET}"; }};', "hmac-sha256"),
    ],
)
def test_each_spelling_reads(tmp_path, text, alg):
    key = keyfile.read(write(tmp_path, text), "hmac-sha256")
    assert (key.name, key.algorithm, key.secret.reveal()) == ("k3snode-key", alg, SECRET)
    assert SECRET not in repr(key)


@pytest.mark.parametrize(
    "text, mode, why",
    [
        (BIND, 0o644, "readable by group or others (mode 0644); chmod 600 it"),
        (BIND, 0o640, "readable by group or others (mode 0640)"),
        ("", 0o600, "not a TSIG key"),
        (BIND + BIND.replace("k3snode-key", "other"), 0o600, "more than one key"),
        (BIND.replace("hmac-sha512", "hmac-sha3"), 0o600, "unknown TSIG algorithm 'hmac-sha3'"),
        ("k3snode-key:not base64!", 0o600, "the secret of key 'k3snode-key' is not base64"),
    ],
)
def test_a_bad_key_file_is_one_line_without_the_secret(tmp_path, text, mode, why):
    path = write(tmp_path, text, mode)
    with pytest.raises(keyfile.KeyFileError) as e:
        keyfile.read(path, "hmac-sha256")
    msg = str(e.value)
    assert why in msg and path in msg and "\n" not in msg
    assert SECRET not in msg


def test_a_missing_key_file_is_named(tmp_path):
    with pytest.raises(
        keyfile.KeyFileError, match=r"\[registration\] key_file: .*/nope does not exist"
    ):
        keyfile.read(str(tmp_path / "nope"), "hmac-sha256")
