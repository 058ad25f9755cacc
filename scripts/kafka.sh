#!/usr/bin/env bash
# A local Kafka-protocol broker for tests and demos: tansu (a Kafka-compatible broker from
# crates.io) on 127.0.0.1 with its SQLite store under target/kafka/. It stands in for Apache
# Kafka, which users run through docker-compose; see ../README.md.
#
#   scripts/kafka.sh install   build tansu into the cache if it is not there (~8 min, once)
#   scripts/kafka.sh start     install if needed, start, wait until it accepts connections
#   scripts/kafka.sh stop      stop the broker started by `start`
#   scripts/kafka.sh status    say whether it runs, and where
#
# Environment: KAFKA_PORT (default 9092), ROOMFLOW_CACHE (default ~/.cache/roomflow),
# KAFKA_STATE (default target/kafka). Known limits of tansu 0.6: no topic auto-creation
# (roomflow creates its topics), no transactions, and DeleteTopics drops every topic, so
# never delete topics; tests use unique topic names instead.
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_VERSION=0.6.0
PORT="${KAFKA_PORT:-9092}"
CACHE="${ROOMFLOW_CACHE:-$HOME/.cache/roomflow}"
ROOT="$CACHE/tansu-$TANSU_VERSION"
TANSU="$ROOT/bin/tansu"
STATE="${KAFKA_STATE:-target/kafka}"
PIDFILE="$STATE/tansu.pid"
LOG="$STATE/tansu.log"

log() { echo "kafka.sh: $*" >&2; }

install() {
  [[ -x "$TANSU" ]] && return 0
  mkdir -p "$CACHE"
  # Two scripts starting at once must not build twice into the same root.
  exec 9>"$CACHE/tansu.lock"
  flock 9
  if [[ ! -x "$TANSU" ]]; then
    log "installing tansu $TANSU_VERSION into $ROOT (about 8 minutes, once per machine)"
    local staging="$ROOT.partial"
    rm -rf "$staging"
    # Its own target directory: never competes with the project's build locks.
    CARGO_TARGET_DIR="$CACHE/tansu-build" cargo install tansu --version "$TANSU_VERSION" \
      --locked --no-default-features --features libsql --root "$staging" --quiet
    rm -rf "$CACHE/tansu-build" "$ROOT"
    mv "$staging" "$ROOT"
  fi
  flock -u 9
}

running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

start() {
  install
  if running; then
    log "already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
    return 0
  fi
  if accepting; then
    log "something else already listens on 127.0.0.1:$PORT; using it"
    return 0
  fi
  mkdir -p "$STATE"
  # tansu mangles absolute sqlite paths: run it inside the state directory with a relative one.
  (
    cd "$STATE"
    nohup "$TANSU" broker \
      --listener-url "tcp://127.0.0.1:$PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$PORT" \
      --storage-engine "sqlite://tansu.db" >tansu.log 2>&1 &
    echo $! >tansu.pid
  )
  for _ in $(seq 1 100); do
    if accepting; then
      log "tansu listening on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), log $LOG)"
      return 0
    fi
    if ! running; then
      log "tansu exited during start; its log ($LOG):"
      tail -n 20 "$LOG" >&2
      return 1
    fi
    sleep 0.1
  done
  log "tansu did not accept connections on 127.0.0.1:$PORT within 10 s; see $LOG"
  return 1
}

stop() {
  if ! running; then
    log "not running"
    rm -f "$PIDFILE"
    return 0
  fi
  local pid
  pid="$(cat "$PIDFILE")"
  kill "$pid"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  log "stopped (pid $pid)"
}

status() {
  if running; then
    echo "tansu running: pid $(cat "$PIDFILE"), 127.0.0.1:$PORT, store $STATE/tansu.db"
  else
    echo "tansu not running"
    return 3
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: scripts/kafka.sh install|start|stop|status" >&2
    exit 2
    ;;
esac
