#!/usr/bin/env bash
# Start a real, single-node Apache Kafka 4.x broker (KRaft, no ZooKeeper)
# without Docker: the broker jars come from Maven Central via infra/kafka/pom.xml
# (the Apache binary tarball is not reachable from this machine).
#
# Usage: infra/kafka/start.sh [--fresh]
#   --fresh (or KAFKA_FRESH=1): stop our broker if running and wipe its data dir.
#
# Environment (all optional):
#   KAFKA_BOOTSTRAP_SERVERS  if set and a broker answers there, use it and start nothing
#   KAFKA_VERSION            broker version to fetch             (default 4.4.0)
#   KAFKA_PORT               client (PLAINTEXT) port             (default 9092)
#   KAFKA_CONTROLLER_PORT    KRaft controller port               (default 9093)
#   RIVERRUN_CACHE           cache root                          (default ~/.cache/riverrun)
#   KAFKA_HOME               jars + default data location        (default $RIVERRUN_CACHE/kafka-$KAFKA_VERSION)
#   KAFKA_DATA_DIR           broker state: config, pid, log, data (default $KAFKA_HOME/kafka-data)
#   KAFKA_HEAP_OPTS          JVM heap flags                      (default -Xms512m -Xmx512m)
#   KAFKA_GC_OPTS            JVM collector flags                 (default -XX:+UseZGC)
#   KAFKA_START_TIMEOUT      seconds to wait for readiness       (default 90)
#
# On success prints (stdout) the bootstrap address, e.g. 127.0.0.1:9092.
set -euo pipefail
LOG_TAG=kafka
# shellcheck source=../common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
# shellcheck source=env.sh
source "$INFRA_DIR/kafka/env.sh"

FRESH="${KAFKA_FRESH:-0}"
for arg in "$@"; do
  case "$arg" in
    --fresh) FRESH=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg" ;;
  esac
done
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"

# --------------------------------------------------------------------------
# Readiness: TCP connect, then (if a python with confluent_kafka exists) a
# real Metadata request that must list at least one broker.  A broker only
# shows up in metadata once it is registered and unfenced with the KRaft
# controller, i.e. it can actually serve produce/consume.  Without python
# we fall back to the broker's own "Kafka Server started" log line.
# --------------------------------------------------------------------------
PY="$(find_python confluent_kafka || true)"

kafka_answers() {  # kafka_answers HOST:PORT[,...] [LOGFILE]
  local first="${1%%,*}" host port
  host="${first%:*}"; port="${first##*:}"
  port_open "$host" "$port" || return 1
  if [[ -n "$PY" ]]; then
    "$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import sys
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1], "socket.timeout.ms": 3000,
                     "log_level": 0})
md = admin.list_topics(timeout=5)
sys.exit(0 if md.brokers else 1)
PYEOF
  elif [[ -n "${2:-}" ]]; then
    grep -q "Kafka Server started" "$2" 2>/dev/null
  else
    return 0  # port is open; best we can tell without a client
  fi
}

# 1. An existing broker given to us?  Use it, start nothing.
if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" && "$FRESH" != 1 ]]; then
  if kafka_answers "$KAFKA_BOOTSTRAP_SERVERS"; then
    if pid_alive "$KAFKA_PID_FILE" "$KAFKA_CONFIG"; then
      log "our broker (pid $(cat "$KAFKA_PID_FILE")) is already running at $KAFKA_BOOTSTRAP_SERVERS"
    else
      log "using existing broker at KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS"
    fi
    echo "$KAFKA_BOOTSTRAP_SERVERS"
    exit 0
  fi
  log "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS does not answer; starting a local broker on $KAFKA_LOCAL_BOOTSTRAP"
fi

# 2. --fresh: stop our broker (if any) and wipe its state.
if [[ "$FRESH" == 1 ]]; then
  "$INFRA_DIR/kafka/stop.sh"
  log "wiping $KAFKA_DATA_DIR"
  rm -rf "$KAFKA_DATA_DIR"
fi

# 3. Already running (our pid file, process alive)?  Just wait until it answers.
if pid_alive "$KAFKA_PID_FILE" "$KAFKA_CONFIG"; then
  log "broker already running (pid $(cat "$KAFKA_PID_FILE")); checking it answers"
  for ((i = 0; i < START_TIMEOUT; i++)); do
    if kafka_answers "$KAFKA_LOCAL_BOOTSTRAP" "$KAFKA_LOG_FILE"; then
      echo "$KAFKA_LOCAL_BOOTSTRAP"; exit 0
    fi
    sleep 1
  done
  tail -n 50 "$KAFKA_LOG_FILE" >&2 || true
  die "broker pid $(cat "$KAFKA_PID_FILE") is alive but not answering on $KAFKA_LOCAL_BOOTSTRAP"
fi
rm -f "$KAFKA_PID_FILE"  # stale (e.g. the machine's processes were killed)

# Someone else on our port?  If it is a Kafka broker, reuse it; otherwise we
# cannot bind, so fail early with a clear message rather than a Java trace.
if port_open 127.0.0.1 "$KAFKA_PORT"; then
  if kafka_answers "$KAFKA_LOCAL_BOOTSTRAP"; then
    log "a broker not started by us already answers on $KAFKA_LOCAL_BOOTSTRAP; using it"
    echo "$KAFKA_LOCAL_BOOTSTRAP"; exit 0
  fi
  die "port $KAFKA_PORT is in use by something that is not a Kafka broker (set KAFKA_PORT)"
fi
port_open 127.0.0.1 "$KAFKA_CONTROLLER_PORT" \
  && die "controller port $KAFKA_CONTROLLER_PORT is in use (set KAFKA_CONTROLLER_PORT)"

# 4. Java + Maven (present on the dev/CI image; installed from apt otherwise).
command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
command -v mvn >/dev/null 2>&1 || apt_install maven

# 5. Fetch the broker jars once into $KAFKA_LIBS.  The stamp file records the
#    pom's checksum + version, so editing the pom (e.g. the log4j version)
#    triggers a re-fetch, while an interrupted fetch never looks complete.
STAMP_WANT="$(sha256sum "$INFRA_DIR/kafka/pom.xml" | cut -d' ' -f1) $KAFKA_VERSION"
if [[ "$(cat "$KAFKA_LIBS/.complete" 2>/dev/null)" != "$STAMP_WANT" ]]; then
  log "fetching kafka_2.13:$KAFKA_VERSION + runtime deps from Maven Central into $KAFKA_LIBS"
  t0=$SECONDS
  rm -rf "$KAFKA_LIBS.tmp"
  mkdir -p "$KAFKA_HOME"
  if ! mvn -B -f "$INFRA_DIR/kafka/pom.xml" \
      -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$KAFKA_LIBS.tmp" >"$KAFKA_HOME/mvn-fetch.log" 2>&1; then
    tail -n 40 "$KAFKA_HOME/mvn-fetch.log" >&2
    die "maven could not resolve kafka_2.13:$KAFKA_VERSION (full log: $KAFKA_HOME/mvn-fetch.log)"
  fi
  echo "$STAMP_WANT" > "$KAFKA_LIBS.tmp/.complete"
  rm -rf "$KAFKA_LIBS"
  mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
  log "fetched $(find "$KAFKA_LIBS" -name "*.jar" | wc -l) jars in $((SECONDS - t0))s"
fi

# 6. Broker config.  Rewritten on every start so port changes apply.
#    We use a *static* KRaft quorum (controller.quorum.voters) rather than
#    the 4.x "dynamic quorum" (--standalone + controller.quorum.bootstrap.servers):
#    with a static quorum the controller endpoint is not baked into the
#    formatted metadata log, so the same data dir keeps working if
#    KAFKA_CONTROLLER_PORT changes between runs.
mkdir -p "$KAFKA_DATA_DIR"
cat > "$KAFKA_CONFIG" <<EOF
# Generated by infra/kafka/start.sh -- edits are overwritten on next start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${KAFKA_CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT},CONTROLLER://127.0.0.1:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${KAFKA_LOG_DIRS}

# Single node: every internal topic must have replication factor 1.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Fewer internal partitions = much faster first consumer-group / transaction
# use on a 2-core machine (defaults are 50 each).
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.num.partitions=1

# Tests: no 3 s wait before the first rebalance, topics appear on first use.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
EOF

# 7. Format the storage once (KRaft requires a cluster id in meta.properties
#    before the first start).  In Kafka 4.x the tool's main class is the Scala
#    object kafka.tools.StorageTool in kafka_2.13.jar; we fall back to a Java
#    class name in case a later release moves it.
JAVA_LOG_OPTS=(-Dlog4j2.configurationFile="$INFRA_DIR/kafka/log4j2.properties"
               -Dkafka.logs.dir="$KAFKA_DATA_DIR")
storage_tool() {
  local cls
  for cls in kafka.tools.StorageTool org.apache.kafka.tools.StorageTool; do
    if java -cp "$KAFKA_LIBS/*" "${JAVA_LOG_OPTS[@]}" "$cls" --help >/dev/null 2>&1; then
      java -cp "$KAFKA_LIBS/*" "${JAVA_LOG_OPTS[@]}" "$cls" "$@"
      return
    fi
  done
  die "no StorageTool main class found in $KAFKA_LIBS"
}
if [[ ! -f "$KAFKA_LOG_DIRS/meta.properties" ]]; then
  cluster_id="$(storage_tool random-uuid | tail -n 1)"
  log "formatting $KAFKA_LOG_DIRS (cluster id $cluster_id)"
  # The tool dumps the whole KafkaConfig at INFO; keep that in a file.
  if ! storage_tool format --config "$KAFKA_CONFIG" --cluster-id "$cluster_id" \
      >"$KAFKA_DATA_DIR/format.log" 2>&1; then
    tail -n 40 "$KAFKA_DATA_DIR/format.log" >&2
    die "kafka storage format failed (log: $KAFKA_DATA_DIR/format.log)"
  fi
fi

# 8. Launch in the background.  setsid puts the JVM in its own session so a
#    Ctrl-C in the calling terminal (or the caller's process group being
#    signalled) does not kill it; stop.sh stops it via the pid file.
[[ -f "$KAFKA_LOG_FILE" ]] && mv -f "$KAFKA_LOG_FILE" "$KAFKA_LOG_FILE.1"
# The collector: ZGC. On 2 shared vCPUs, G1's young pauses (MaxGCPauseMillis=20) took up to
# 150 ms while a flow and its publisher ran, and every consumer saw them (a bare consumer of the
# events topic, benchmarks/kafka_floor.py, at 6,800 events/s: p99 10-55 ms, max 68-164 ms); with
# ZGC it saw p99 9 ms, max 14-19 ms.
# shellcheck disable=SC2086  # KAFKA_HEAP_OPTS and KAFKA_GC_OPTS are lists of flags
(
  cd "$KAFKA_DATA_DIR"
  exec setsid java ${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m} \
    ${KAFKA_GC_OPTS:--XX:+UseZGC} -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true "${JAVA_LOG_OPTS[@]}" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONFIG"
) >"$KAFKA_LOG_FILE" 2>&1 </dev/null &
echo $! > "$KAFKA_PID_FILE"
log "started broker pid $(cat "$KAFKA_PID_FILE"), log: $KAFKA_LOG_FILE"

# 9. Wait until it serves metadata (or died / timed out).
t0=$SECONDS
while ! kafka_answers "$KAFKA_LOCAL_BOOTSTRAP" "$KAFKA_LOG_FILE"; do
  if ! pid_alive "$KAFKA_PID_FILE" "$KAFKA_CONFIG"; then
    tail -n 80 "$KAFKA_LOG_FILE" >&2 || true
    rm -f "$KAFKA_PID_FILE"
    die "broker exited during startup (log above: $KAFKA_LOG_FILE)"
  fi
  if ((SECONDS - t0 >= START_TIMEOUT)); then
    tail -n 80 "$KAFKA_LOG_FILE" >&2 || true
    "$INFRA_DIR/kafka/stop.sh" || true
    die "broker not ready after ${START_TIMEOUT}s (log above: $KAFKA_LOG_FILE)"
  fi
  sleep 0.5
done
log "broker ready at $KAFKA_LOCAL_BOOTSTRAP after $((SECONDS - t0))s (Kafka $KAFKA_VERSION)"

# 10. Warm-up (best effort).  On a fresh data dir the first consumer group
#     and the first idempotent/transactional producer make the broker create
#     __consumer_offsets / __transaction_state and fetch a producer-id block
#     from the controller; until then clients get COORDINATOR_LOAD_IN_PROGRESS
#     and retry (librdkafka logs "Failed to acquire idempotence PID").  Doing
#     it here keeps the first test fast and its log clean.
if [[ -n "$PY" ]]; then
  "$PY" - "$KAFKA_LOCAL_BOOTSTRAP" <<'PYEOF' >&2 || log "warm-up failed (non-fatal)"
import sys
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
bs = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bs, "log_level": 0})
try:  # FindCoordinator(group) auto-creates __consumer_offsets
    admin.describe_consumer_groups(["riverrun-infra-warmup"])["riverrun-infra-warmup"].result(timeout=30)
except Exception:
    pass  # "group does not exist" is expected; the side effect is what we want
# Idempotent producer: the first InitProducerId makes the broker fetch a
# producer-id block from the controller.  librdkafka gives no API to await
# the PID, so watch its "eos" debug log for the Assigned state.
import logging, threading, time
assigned = threading.Event()
class Watch(logging.Handler):
    def emit(self, record):
        if "-> Assigned" in record.getMessage():
            assigned.set()
lg = logging.getLogger("riverrun.warmup"); lg.propagate = False
lg.setLevel(logging.DEBUG); lg.addHandler(Watch())
p = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "debug": "eos", "logger": lg})
deadline = time.monotonic() + 30
while not assigned.is_set() and time.monotonic() < deadline:
    p.poll(0.1)
p.flush(5)
# Transactional producer: creates/loads __transaction_state.
p = Producer({"bootstrap.servers": bs, "transactional.id": "riverrun-infra-warmup", "log_level": 0})
p.init_transactions(60)
PYEOF
  log "warm-up done after $((SECONDS - t0))s"
fi
echo "$KAFKA_LOCAL_BOOTSTRAP"
