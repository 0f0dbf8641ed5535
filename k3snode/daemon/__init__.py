"""``k3snode run``: keeps the K3s config current while the node runs.

- **Start**: discover → render → write, then ``READY=1``. If no pass succeeds within
  ``[daemon] boot_wait``, become ready anyway, degraded, with the config on disk untouched. Mesh
  "tailscale" is brought up first, in a worker thread (minutes at worst), so ``boot_wait`` and
  ``WATCHDOG=1`` hold; its result asks for the pass.
- **Events**: netlink address and default-route changes (``netwatch.py``), debounced by
  ``[daemon] debounce``; a metadata poll every ``[daemon] poll_interval`` (±10 % jitter); a
  provider's change signal (GCP's metadata long-poll, ``longpoll.py``) within seconds.
- **Calm**: a failed pass or one without an address keeps the last good state. A new address is
  used only when seen again ``[daemon] confirm_delay`` later. K3s restarts only when what it reads
  changed, at most once per ``[daemon] min_restart_interval``, never when it was not running; a
  restart that fails is reported, not retried (``restarts.py``).
- **Signals**: SIGTERM/SIGINT → ``STOPPING=1`` and exit 0; SIGHUP → ``RELOADING=1``, settings
  re-read (a bad file keeps the old settings; its one-line error is the failing "settings" check
  in STATUS=, /healthz and ``k3snode status`` until a reload succeeds).
- **Not configured**: while nothing says what the node is (``Settings.configured``), no pass runs
  and nothing is written; READY=1 comes at once with ``STATUS=not configured: …``, /healthz
  answers 503 with the same line. A reload that brings settings goes on as a normal start.

The loop is ``loop.py``; docs/architecture.md draws the threads.
"""
