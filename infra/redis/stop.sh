#!/usr/bin/env bash
# Stop the redis-server started by infra/redis/start.sh.  Only touches the
# server whose pid file we wrote; a redis provided by someone else is left alone.
set -euo pipefail
LOG_TAG=redis
# shellcheck source=../common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
# shellcheck source=env.sh
source "$INFRA_DIR/redis/env.sh"

if ! pid_alive "$REDIS_PID_FILE" redis-server; then
  [[ -f "$REDIS_PID_FILE" ]] && log "removing stale pid file $REDIS_PID_FILE"
  rm -f "$REDIS_PID_FILE"
  log "not running"
  exit 0
fi
pid="$(cat "$REDIS_PID_FILE")"
log "stopping pid $pid"
# SHUTDOWN NOSAVE: clean exit without writing an RDB (persistence is off anyway).
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
if kill -0 "$pid" 2>/dev/null; then
  log "still alive after 10s; SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$REDIS_PID_FILE"
log "stopped"
