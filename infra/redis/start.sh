#!/usr/bin/env bash
# Start a local redis-server on 127.0.0.1:$REDIS_PORT (default 6379) without
# Docker and without the distro's systemd unit (containers/CI have no systemd).
#
# * Installs Debian's redis-server package if the binary is missing.
# * If REDIS_URL is set and answers PING, or something on the port already
#   answers PING (our own server from an earlier start, or one provided by
#   the machine), does nothing.
# * Runs daemonized with its own dir/pid/log under $REDIS_HOME
#   (default $RIVERRUN_CACHE/redis-$REDIS_PORT), persistence disabled: the
#   tests treat Redis as a cache/feature store, not a durable database.
#
# On success prints (stdout) the URL, e.g. redis://127.0.0.1:6379/0.
set -euo pipefail
LOG_TAG=redis
# shellcheck source=../common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
# shellcheck source=env.sh
source "$INFRA_DIR/redis/env.sh"
START_TIMEOUT="${REDIS_START_TIMEOUT:-30}"

# redis-cli comes with redis-server (Debian's redis-tools dependency).
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  apt_install redis-server
fi

ping() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

# A Redis handed to us via REDIS_URL that answers: use it, start nothing.
if [[ -n "${REDIS_URL:-}" ]] \
   && [[ "$(timeout 5 redis-cli -u "$REDIS_URL" ping 2>/dev/null)" == PONG ]]; then
  log "using existing redis at REDIS_URL=$REDIS_URL"
  echo "$REDIS_URL"
  exit 0
fi

if ping; then
  if pid_alive "$REDIS_PID_FILE" redis-server; then
    log "already running (pid $(cat "$REDIS_PID_FILE")) on 127.0.0.1:$REDIS_PORT"
  else
    log "a redis not started by us already answers on 127.0.0.1:$REDIS_PORT; using it"
  fi
  echo "$REDIS_LOCAL_URL"
  exit 0
fi
port_open 127.0.0.1 "$REDIS_PORT" && die "port $REDIS_PORT is in use by something that is not redis (set REDIS_PORT)"

mkdir -p "$REDIS_HOME"
rm -f "$REDIS_PID_FILE"
# All settings on the command line (no config file to keep in sync).
# --save "" / --appendonly no: no RDB/AOF files, nothing to recover on restart.
redis-server \
  --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
  --daemonize yes --pidfile "$REDIS_PID_FILE" --logfile "$REDIS_LOG_FILE" \
  --dir "$REDIS_HOME" --save "" --appendonly no \
  || { tail -n 30 "$REDIS_LOG_FILE" >&2 || true; die "redis-server failed to start"; }

for ((i = 0; i < START_TIMEOUT * 4; i++)); do
  if ping; then
    log "ready at 127.0.0.1:$REDIS_PORT (pid $(cat "$REDIS_PID_FILE" 2>/dev/null || echo '?'), $(redis-server --version | awk '{print $3}'))"
    echo "$REDIS_LOCAL_URL"
    exit 0
  fi
  sleep 0.25
done
tail -n 30 "$REDIS_LOG_FILE" >&2 || true
die "redis not answering PING after ${START_TIMEOUT}s"
