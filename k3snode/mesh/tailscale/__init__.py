"""K3s's Tailscale integration: bring Tailscale up before K3s starts and read the node's Tailscale
addresses and health.

Modules, each importing only those listed before it (no circle):

- ``types``: the status, peer and outcome records and ``TailscaleError``; ``gotime``: Go's
  ``time.Time`` JSON read fast;
- ``status``: runs the ``tailscale`` CLI and parses ``tailscale status --json``; the node's
  Tailscale addresses (``node_addresses``);
- ``version``: the Tailscale version floor; ``up_args``: what ``tailscale up`` is told;
- ``install``: the install script and ``tailscaled``; ``progress``: what the operator is told
  while ``tailscale up`` waits;
- ``bringup``: ``ensure_up``, the one bring-up step; ``health``: the observer and the preflight;
  ``policy``: the tailnet policy snippet.

The auth key never leaves its file: ``tailscale`` reads it (``file:`` prefix, Tailscale's
``cmd/tailscale/cli/up.go``), and every line of Tailscale's output k3snode repeats is scrubbed of the
key and of anything shaped like ``tskey-…`` first (``status.scrub``).
"""
