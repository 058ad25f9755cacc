#!/usr/bin/env bash
# A local MongoDB-protocol server for tests and demos: nx-27017 (a MongoDB wire-protocol server
# in Python on SQLite, from PyPI) on 127.0.0.1, installed into a virtualenv in the cache. It
# stands in for MongoDB, which users run through docker-compose; see ../README.md.
#
#   scripts/mongo.sh install   create the virtualenv in the cache if it is not there (once)
#   scripts/mongo.sh start     install if needed, start, wait until it answers
#   scripts/mongo.sh stop      stop the server started by `start`
#   scripts/mongo.sh status    say whether it runs, and where
#
# Environment: MONGO_PORT (default 27017), ROOMFLOW_CACHE (default ~/.cache/roomflow),
# MONGO_STATE (default target/mongo: pid and log files), MONGO_STORE (default `memory`, or a
# SQLite file for a store that outlives the server). Known limits of nx-27017 0.8: updates must
# be keyed by `_id` to be fast, no Decimal128, transactions are not isolated (roomflow does not
# rely on them).
set -euo pipefail
cd "$(dirname "$0")/.."

NX_VERSION=0.8.1
PORT="${MONGO_PORT:-27017}"
CACHE="${ROOMFLOW_CACHE:-$HOME/.cache/roomflow}"
ROOT="$CACHE/nx-27017-$NX_VERSION"
SERVER="$ROOT/bin/nx-27017"
STATE="${MONGO_STATE:-target/mongo}"
STORE="${MONGO_STORE:-memory}"
PIDFILE="$STATE/nx-27017.pid"
LOG="$STATE/nx-27017.log"

log() { echo "mongo.sh: $*" >&2; }

install() {
  [[ -x "$SERVER" ]] && return 0
  mkdir -p "$CACHE"
  exec 8>"$CACHE/nx-27017.lock"
  flock 8
  if [[ ! -x "$SERVER" ]]; then
    log "installing nx-27017 $NX_VERSION into $ROOT (once per machine)"
    local staging="$ROOT.partial"
    rm -rf "$staging"
    # The virtualenv is built where it will live (its scripts name their interpreter by path).
    python3 -m venv "$ROOT"
    "$ROOT/bin/pip" install --quiet --disable-pip-version-check \
      "nx-27017==$NX_VERSION" 'neosqlite==1.17.2' 'pymongo==4.20.1' || {
      rm -rf "$ROOT"
      log "pip install failed"
      return 1
    }
  fi
  flock -u 8
}

running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

answering() {
  "$ROOT/bin/python" - "$PORT" <<'PY' 2>/dev/null
import sys
from pymongo import MongoClient
MongoClient(f"mongodb://127.0.0.1:{sys.argv[1]}", serverSelectionTimeoutMS=300).admin.command("ping")
PY
}

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
  local state
  state="$(cd "$STATE" && pwd)"
  "$SERVER" -d --db "$STORE" --host 127.0.0.1 -p "$PORT" \
    --log-file "$state/nx-27017.log" --pid-file "$state/nx-27017.pid" >/dev/null 2>&1
  for _ in $(seq 1 100); do
    if answering; then
      log "nx-27017 answering on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), log $LOG)"
      return 0
    fi
    sleep 0.1
  done
  log "nx-27017 did not answer on 127.0.0.1:$PORT within 10 s; its log ($LOG):"
  tail -n 20 "$LOG" >&2 || true
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
    echo "nx-27017 running: pid $(cat "$PIDFILE"), 127.0.0.1:$PORT, store $STORE"
  else
    echo "nx-27017 not running"
    return 3
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: scripts/mongo.sh install|start|stop|status" >&2
    exit 2
    ;;
esac
