# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts that source this
# Paths and ports shared by kafka/start.sh and kafka/stop.sh (sourced after
# ../common.sh).  Keep start and stop agreeing on where the pid file lives.
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HOME="${KAFKA_HOME:-$RIVERRUN_CACHE/kafka-$KAFKA_VERSION}"
KAFKA_LIBS="$KAFKA_HOME/libs"
# Data is per Kafka version by default: a log dir formatted by a newer
# Kafka cannot be opened by an older one.
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$KAFKA_HOME/kafka-data}"
KAFKA_LOG_DIRS="$KAFKA_DATA_DIR/data"          # Kafka's log.dirs (topic data)
KAFKA_CONFIG="$KAFKA_DATA_DIR/server.properties"
KAFKA_PID_FILE="$KAFKA_DATA_DIR/kafka.pid"
KAFKA_LOG_FILE="$KAFKA_DATA_DIR/kafka.log"     # broker stdout/stderr
KAFKA_LOCAL_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
