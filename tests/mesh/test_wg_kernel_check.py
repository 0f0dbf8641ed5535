"""The daemon's kernel check behind the flannel observer, and the probe's sysfs answer: plain tier
(the probes are small hand-written stand-ins for the kernel's answers; the real probe is tested in
``test_wg_preflight.py``)."""

from __future__ import annotations

import logging

from k3snode.mesh.wg import preflight

NO = (False, "creating a wireguard link: Operation not supported")


class Probe:
    def __init__(self, answer):
        self.answer = answer
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.answer


def test_a_loaded_module_answers_without_creating_anything(tmp_path):
    (tmp_path / "sys/module/wireguard").mkdir(parents=True)
    assert preflight.kernel_wireguard(root=str(tmp_path)) == (
        True,
        "the wireguard module is loaded or built in",
    )


def test_no_wireguard_is_said_once_and_asked_again_only_after_the_recheck(caplog):
    now = [0.0]
    probe = Probe(NO)
    check = preflight.KernelCheck(clock=lambda: now[0], probe=probe, installed=lambda: False)
    with caplog.at_level(logging.ERROR, logger="k3snode.mesh.wg.preflight"):
        first = check.problem()
        now[0] = preflight.KERNEL_RECHECK - 1
        assert check.problem() == first
        assert probe.calls == 1
        now[0] = preflight.KERNEL_RECHECK + 1
        assert check.problem() == first
        assert probe.calls == 2
    assert first.startswith("this kernel has no WireGuard module (Linux ")
    assert "Operation not supported" in first and 'mesh = "tailscale"' in first
    assert [r.getMessage() for r in caplog.records] == [first]  # logged once, not per answer


def test_an_installed_module_is_not_probed_and_not_an_error(caplog):
    probe = Probe(NO)
    check = preflight.KernelCheck(probe=probe, installed=lambda: True)
    with caplog.at_level(logging.ERROR, logger="k3snode.mesh.wg.preflight"):
        problem = check.problem()
    assert probe.calls == 0
    assert problem is None or "K3s loads it" in problem  # loaded here, or loaded by K3s later
    assert not caplog.records


def test_a_probe_that_cannot_tell_is_no_problem():
    check = preflight.KernelCheck(
        probe=Probe((None, "needs CAP_NET_ADMIN")), installed=lambda: False
    )
    assert check.problem() is None
