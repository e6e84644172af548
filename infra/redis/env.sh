# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts that source this
# Paths shared by redis/start.sh and redis/stop.sh (sourced after ../common.sh).
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_HOME="${REDIS_HOME:-$RIVERRUN_CACHE/redis-$REDIS_PORT}"   # dir, pid, log
REDIS_PID_FILE="$REDIS_HOME/redis.pid"
REDIS_LOG_FILE="$REDIS_HOME/redis.log"
REDIS_LOCAL_URL="redis://127.0.0.1:$REDIS_PORT/0"
