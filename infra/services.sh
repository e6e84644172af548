#!/usr/bin/env bash
# Start/stop the real services the riverrun tests need (Kafka + Redis), no Docker.
#
#   infra/services.sh start [--fresh]   start both (idempotent); --fresh wipes Kafka data;
#                                       installs prometheus/promtool if missing (run by tests)
#   infra/services.sh stop              stop both (only what we started)
#   infra/services.sh status            show state; exit 1 if either is down
#   infra/services.sh env               print the export lines (no starting)
#   infra/services.sh smoke             produce/consume + SET/GET round trip
#
# `start` prints ONLY `export VAR=...` lines on stdout (progress goes to
# stderr), so a shell can do:   eval "$(infra/services.sh start)"
set -euo pipefail
LOG_TAG=services
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

print_env() {  # print_env KAFKA_BOOTSTRAP REDIS_URL
  echo "export KAFKA_BOOTSTRAP_SERVERS=$1"
  echo "export REDIS_URL=$2"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  start)
    t0=$SECONDS
    # Binaries only: the tests start their own Prometheus processes. Not fatal here (a developer
    # without root can still start Kafka and Redis); tests/test_alerts.py fails in CI without it.
    "$INFRA_DIR/prometheus/install.sh" >/dev/null || log "WARNING: prometheus/promtool not installed"
    kafka="$("$INFRA_DIR/kafka/start.sh" "$@")"
    redis="$("$INFRA_DIR/redis/start.sh")"
    log "services up in $((SECONDS - t0))s"
    print_env "$kafka" "$redis"
    ;;
  stop)
    rc=0
    "$INFRA_DIR/kafka/stop.sh" || rc=1
    "$INFRA_DIR/redis/stop.sh" || rc=1
    exit $rc
    ;;
  status)
    # shellcheck source=kafka/env.sh
    source "$INFRA_DIR/kafka/env.sh"
    # shellcheck source=redis/env.sh
    source "$INFRA_DIR/redis/env.sh"
    rc=0
    kb="${KAFKA_BOOTSTRAP_SERVERS:-$KAFKA_LOCAL_BOOTSTRAP}"; kb1="${kb%%,*}"
    if pid_alive "$KAFKA_PID_FILE" "$KAFKA_CONFIG"; then kpid="pid $(cat "$KAFKA_PID_FILE")"; else kpid="no live pid file: not started by these scripts"; fi
    if port_open "${kb1%:*}" "${kb1##*:}"; then
      echo "kafka: UP   $kb ($kpid; Kafka $KAFKA_VERSION, data $KAFKA_DATA_DIR)"
    else
      echo "kafka: DOWN $kb ($kpid)"; rc=1
    fi
    ru="${REDIS_URL:-$REDIS_LOCAL_URL}"
    if pid_alive "$REDIS_PID_FILE" redis-server; then rpid="pid $(cat "$REDIS_PID_FILE")"; else rpid="no live pid file: not started by these scripts"; fi
    if command -v redis-cli >/dev/null && [[ "$(timeout 5 redis-cli -u "$ru" ping 2>/dev/null)" == PONG ]]; then
      echo "redis: UP   $ru ($rpid)"
    else
      echo "redis: DOWN $ru ($rpid)"; rc=1
    fi
    for tool in prometheus promtool; do
      echo "$tool: $(command -v "$tool" || echo 'MISSING (infra/prometheus/install.sh)')"
    done
    exit $rc
    ;;
  env)
    # shellcheck source=kafka/env.sh
    source "$INFRA_DIR/kafka/env.sh"
    # shellcheck source=redis/env.sh
    source "$INFRA_DIR/redis/env.sh"
    print_env "${KAFKA_BOOTSTRAP_SERVERS:-$KAFKA_LOCAL_BOOTSTRAP}" "${REDIS_URL:-$REDIS_LOCAL_URL}"
    ;;
  smoke)
    py="$(find_python confluent_kafka)" || die "no python with confluent_kafka (create .venv first)"
    eval "$("$0" env)"
    exec "$py" "$INFRA_DIR/smoke.py" "$@"
    ;;
  *)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
