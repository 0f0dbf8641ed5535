"""The daemon's health: what checks report (``checks``), the model with its grace period
(``model``), the status file (``statusfile``), ``/healthz`` and ``/metrics`` (``server``,
``metrics``) and which observers run (``registry``)."""
