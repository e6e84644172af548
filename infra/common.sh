# shellcheck shell=bash
# Helpers shared by infra/*/start.sh and stop.sh.  Sourced, never executed.
#
# Conventions:
#   * Progress/diagnostics go to STDERR, so that `infra/services.sh start`
#     can print only `export VAR=...` lines on STDOUT (eval-able).
#   * Everything we download or create lives under $RIVERRUN_CACHE
#     (default ~/.cache/riverrun) so a second start is fast and a
#     fresh machine simply re-populates it.

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$INFRA_DIR/.." && pwd)"
RIVERRUN_CACHE="${RIVERRUN_CACHE:-${HOME:-/root}/.cache/riverrun}"

log() { printf '[%s] %s\n' "${LOG_TAG:-infra}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# port_open HOST PORT -> 0 if something accepts TCP connections there.
# Uses bash's /dev/tcp so it needs no extra tools; `timeout` guards against
# a black-holed address hanging the connect.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# pid_alive PIDFILE [CMDLINE_SUBSTRING] -> 0 if the file names a live
# process (whose command line contains the substring, when given).  The
# substring check guards against a stale pid file whose pid was reused by
# an unrelated process after a reboot / machine reset.
pid_alive() {
  local pid
  [[ -f "$1" ]] || return 1
  pid="$(cat "$1" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ -z "${2:-}" ]] && return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# find_python -> prints a python interpreter that can `import $1`, or nothing.
# Prefers the repo's venv (which has confluent-kafka/redis installed), then
# whatever PYTHON points at, then python3.
find_python() {
  local mod="$1" py
  for py in "${PYTHON:-}" "$REPO_ROOT/.venv/bin/python" python3; do
    [[ -n "$py" ]] || continue
    command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c "import $mod" >/dev/null 2>&1; then
      echo "$py"; return 0
    fi
  done
  return 1
}

# apt_install PKG... -> install Debian packages non-interactively, running
# `apt-get update` at most once per process (fresh machines have no lists).
apt_install() {
  [[ $(id -u) -eq 0 ]] || die "need root to apt-get install $*"
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z "${_RIVERRUN_APT_UPDATED:-}" ]]; then
    log "apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    _RIVERRUN_APT_UPDATED=1
  fi
  log "apt-get install $*"
  # Quiet on success, full output on failure.
  local out; out="$(mktemp)"
  if ! apt-get install -y -qq --no-install-recommends "$@" >"$out" 2>&1; then
    cat "$out" >&2; rm -f "$out"
    die "apt-get install $* failed"
  fi
  rm -f "$out"
}
