#!/usr/bin/env bash
# Stop the broker started by infra/kafka/start.sh (found via its pid file).
# SIGTERM first: Kafka then does a controlled shutdown and flushes/closes its
# logs cleanly, so the next start skips log recovery.  SIGKILL after
# KAFKA_STOP_TIMEOUT (default 30) seconds.  A broker we did not start
# (KAFKA_BOOTSTRAP_SERVERS pointing elsewhere) is never touched.
set -euo pipefail
LOG_TAG=kafka
# shellcheck source=../common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
# shellcheck source=env.sh
source "$INFRA_DIR/kafka/env.sh"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

if ! pid_alive "$KAFKA_PID_FILE" "$KAFKA_CONFIG"; then
  [[ -f "$KAFKA_PID_FILE" ]] && log "removing stale pid file $KAFKA_PID_FILE"
  rm -f "$KAFKA_PID_FILE"
  log "broker not running"
  exit 0
fi

pid="$(cat "$KAFKA_PID_FILE")"
log "stopping broker pid $pid (SIGTERM)"
kill -TERM "$pid" 2>/dev/null || true
for ((i = 0; i < STOP_TIMEOUT * 4; i++)); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.25
done
if kill -0 "$pid" 2>/dev/null; then
  log "broker still alive after ${STOP_TIMEOUT}s; SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
fi
rm -f "$KAFKA_PID_FILE"
log "broker stopped"
