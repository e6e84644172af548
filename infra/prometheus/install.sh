#!/usr/bin/env bash
# Make sure `prometheus` and `promtool` are on PATH (Debian's prometheus package), without leaving
# a system Prometheus running. Nothing here runs permanently: the tests start their own
# Prometheus processes on free ports with a temp config and storage (tests/prometheus_harness.py).
#
# * Fast and silent when both binaries exist (one `command -v` each).
# * Installs with a temporary /usr/sbin/policy-rc.d that refuses service starts (the Debian way
#   to install a daemon package in a container or image), so the package's init script does not
#   start a server on :9090. If one was started anyway (a machine with systemd, or a
#   policy-rc.d of its own that allows it), it is stopped and its autostart disabled.
#
# Prints (stdout) the two paths, one per line: prometheus, then promtool.
set -euo pipefail
LOG_TAG=prometheus
# shellcheck source=../common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

have() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }

# stop_system_service: the package's daemon, if the install started it (never our test servers,
# which run from their own config paths, not /etc/prometheus/prometheus.yml).
stop_system_service() {
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/prometheus ]]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    command -v update-rc.d >/dev/null 2>&1 && update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
  local pid
  for pid in $(pgrep -x prometheus 2>/dev/null || true); do
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- '/etc/prometheus/prometheus.yml\|^/usr/bin/prometheus *$'; then
      log "stopping the packaged Prometheus (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
}

if ! have; then
  policy=/usr/sbin/policy-rc.d
  ours=""
  if [[ $(id -u) -eq 0 && ! -e "$policy" ]]; then
    printf '#!/bin/sh\n# riverrun infra/prometheus/install.sh: no service starts during install\nexit 101\n' >"$policy"
    chmod +x "$policy"
    ours=1
  fi
  # shellcheck disable=SC2317  # invoked via trap
  cleanup() { [[ -n "$ours" ]] && rm -f "$policy"; return 0; }
  trap cleanup EXIT
  t0=$SECONDS
  # The package has promtool in the same binary package (Debian: /usr/bin/promtool).
  apt_install prometheus
  cleanup; ours=""
  stop_system_service
  have || die "prometheus/promtool still missing after apt-get install prometheus"
  log "installed in $((SECONDS - t0))s: $(prometheus --version 2>&1 | head -n 1)"
fi

if port_open 127.0.0.1 9090 && pgrep -x prometheus >/dev/null 2>&1; then
  log "note: a Prometheus answers on :9090 (not started by this script; the tests use free ports)"
fi
command -v prometheus
command -v promtool
