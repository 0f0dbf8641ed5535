#!/bin/sh
# Stub of K3s's installer (get.k3s.io) for the system tier: does what the real one does with
# INSTALL_K3S_EXEC and INSTALL_K3S_SKIP_* — downloads k3s (here: the stub) to /usr/local/bin,
# writes the unit (k3s.service or k3s-agent.service) and its 0600 env file of K3S_* variables,
# enables and (unless told not to) starts it. Records the names of the INSTALL_K3S_*/K3S_*
# variables it saw (never their values) in /var/log/stub-k3s-install.log.
set -e
GITHUB_URL=${GITHUB_URL:-https://github.com/k3s-io/k3s/releases}
EXEC=${INSTALL_K3S_EXEC:-}
if [ -z "$EXEC" ]; then
    if [ -n "${K3S_URL:-}" ]; then EXEC=agent; else EXEC=server; fi
fi
case $EXEC in
    server*) NAME=k3s ;;
    agent*) NAME=k3s-agent ;;
    *) echo "[ERROR]  stub: unknown exec $EXEC" >&2; exit 1 ;;
esac
{
    echo "exec=$EXEC"
    env | sed -n 's/^\(INSTALL_K3S_[A-Z_]*\)=\(.*\)/\1=\2/p; s/^\(K3S_[A-Z_]*\)=.*/\1/p' | sort
} >>/var/log/stub-k3s-install.log
echo "[INFO]  Downloading binary $GITHUB_URL/download/v1.31.4+k3s1/k3s"
curl -fsSL -o /usr/local/bin/k3s.tmp "$GITHUB_URL/download/v1.31.4+k3s1/k3s"
chmod 0755 /usr/local/bin/k3s.tmp
mv -f /usr/local/bin/k3s.tmp /usr/local/bin/k3s
UNIT=/etc/systemd/system/$NAME.service
echo "[INFO]  env: Creating environment file $UNIT.env"
touch "$UNIT.env"
chmod 0600 "$UNIT.env"
env | grep -E '^K3S_' >"$UNIT.env" || true
cat >"$UNIT" <<UNIT
[Unit]
Description=Lightweight Kubernetes (stub)
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
EnvironmentFile=-$UNIT.env
KillMode=process
Delegate=yes
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStart=/usr/local/bin/k3s $EXEC

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
if [ "${INSTALL_K3S_SKIP_ENABLE:-}" != true ]; then
    systemctl enable "$NAME.service"
    if [ "${INSTALL_K3S_SKIP_START:-}" != true ]; then systemctl restart "$NAME.service"; fi
fi
