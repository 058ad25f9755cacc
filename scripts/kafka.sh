#!/usr/bin/env bash
# The local Apache Kafka for tests, benchmarks and demos: the official broker, assembled from
# Maven Central (deploy/kafka/pom.xml) into a cache outside the repository, run as one KRaft node
# (broker and controller in one JVM) on 127.0.0.1. It is the same code as the apache/kafka image
# that docker-compose runs, and the version is named once, as KAFKA_VERSION in .env, for both.
#
#   scripts/kafka.sh install   assemble Kafka into the cache unless it is there (~10-30 s, once)
#   scripts/kafka.sh start     install if needed, format on first start, start, wait for metadata
#   scripts/kafka.sh stop      stop the broker `start` started, by its pid
#   scripts/kafka.sh status    say whether it runs, and where
#
# Needs a JDK 17+ (java, on PATH or in JAVA_HOME) and Maven 3.8+ (mvn). Environment:
#   KAFKA_PORT           the client listener (default 9092); the controller uses KAFKA_PORT+1
#   KAFKA_HOST           the address the client listener binds and advertises (default 127.0.0.1;
#                        e.g. a bridge's address, for clients in network namespaces)
#   KAFKA_STATE          log directory, pid and the broker's own log (default target/kafka)
#   KAFKA_HEAP           the broker's heap (default 512m)
#   KAFKA_START_TIMEOUT  seconds to wait for the first metadata answer (default 60)
#   ROOMFLOW_CACHE       where Kafka is assembled (default ~/.cache/roomflow)
#   KAFKA_SASL_SSL_PORT  also listen for TLS + SASL/SCRAM-SHA-512 clients on this port: a CA and
#                        the broker's certificate are made on first start (KAFKA_STATE/tls/, the
#                        CA for clients' ssl.ca.location in ca.pem), and the SCRAM user
#                        KAFKA_SCRAM_USER (default roomflow) with password KAFKA_SCRAM_PASSWORD
#                        (required) is created once the broker answers
#   KAFKA_VERSION        overrides .env's, as it does for docker compose
set -euo pipefail
cd "$(dirname "$0")/.."

env_version() { sed -n 's/^KAFKA_VERSION=//p' .env; }
VERSION="${KAFKA_VERSION:-$(env_version)}"
PORT="${KAFKA_PORT:-9092}"
HOST="${KAFKA_HOST:-127.0.0.1}"
CONTROLLER_PORT="$((PORT + 1))"
CACHE="${ROOMFLOW_CACHE:-$HOME/.cache/roomflow}"
ROOT="$CACHE/kafka-$VERSION"
STATE="$(mkdir -p "${KAFKA_STATE:-target/kafka}" && cd "${KAFKA_STATE:-target/kafka}" && pwd)"
PIDFILE="$STATE/kafka.pid"
LOG="$STATE/broker.log"
HEAP="${KAFKA_HEAP:-512m}"
TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-}"
TLS="$STATE/tls"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

log() { echo "kafka.sh: $*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  log "$1 not found: the local Kafka needs $2 (docker compose needs neither)"
  exit 1
}

install() {
  [[ -f "$ROOT/.complete" ]] && return 0
  [[ -n "$VERSION" ]] || { log "no KAFKA_VERSION in .env"; exit 1; }
  need mvn "Maven 3.8+"
  need "$JAVA" "a JDK 17+"
  mkdir -p "$CACHE"
  # Two scripts starting at once must not assemble twice into the same root, nor see half of it.
  exec 9>"$CACHE/kafka.lock"
  flock 9
  if [[ ! -f "$ROOT/.complete" ]]; then
    log "assembling Apache Kafka $VERSION from Maven Central into $ROOT (once per machine)"
    local staging="$ROOT.partial"
    rm -rf "$staging"
    mkdir -p "$staging"
    mvn -q -B -Dstyle.color=never -f deploy/kafka/pom.xml -Dkafka.version="$VERSION" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DoutputDirectory="$staging/libs" -DincludeScope=runtime
    touch "$staging/.complete"
    rm -rf "$ROOT"
    mv "$staging" "$ROOT"
    log "assembled: $(find "$ROOT/libs" -name '*.jar' | wc -l) jars, $(du -sh "$ROOT/libs" | cut -f1)"
  fi
  flock -u 9
}

# The pid in the pid file, if that process is still the broker this script started.
running() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'
}

listening() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# Answers a metadata request within $1 seconds (a JDK runs the probe from source).
answers() {
  "$JAVA" -Dlog4j2.level=OFF -Dlog4j2.StatusLogger.level=OFF -cp "$ROOT/libs/*" \
    deploy/kafka/Ready.java "$HOST:$PORT" "$1"
}

# A CA of its own and the broker's key and certificate (for 127.0.0.1 and localhost), signed by
# it, made with the JDK's keytool; the store password is the broker's business only.
make_certificates() {
  [[ -f "$TLS/broker.p12" ]] && return 0
  need keytool "a JDK 17+ (keytool)"
  mkdir -p "$TLS"
  local pass ks=(-storetype PKCS12 -storepass)
  pass="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
  echo "$pass" >"$TLS/store.password"
  chmod 600 "$TLS/store.password"
  keytool -genkeypair -alias ca -keyalg RSA -keysize 2048 -validity 365 -dname "CN=roomflow test CA" \
    -ext bc:c -keystore "$TLS/ca.p12" "${ks[@]}" "$pass" 2>/dev/null
  keytool -exportcert -rfc -alias ca -keystore "$TLS/ca.p12" "${ks[@]}" "$pass" -file "$TLS/ca.pem" 2>/dev/null
  keytool -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 365 -dname "CN=localhost" \
    -keystore "$TLS/broker.p12" "${ks[@]}" "$pass" 2>/dev/null
  keytool -certreq -alias broker -keystore "$TLS/broker.p12" "${ks[@]}" "$pass" -file "$TLS/broker.csr"
  keytool -gencert -alias ca -keystore "$TLS/ca.p12" "${ks[@]}" "$pass" -infile "$TLS/broker.csr" \
    -outfile "$TLS/broker.pem" -rfc -validity 365 -ext "SAN=dns:localhost,ip:127.0.0.1"
  keytool -importcert -noprompt -alias ca -file "$TLS/ca.pem" -keystore "$TLS/broker.p12" \
    "${ks[@]}" "$pass" >/dev/null 2>&1
  keytool -importcert -alias broker -file "$TLS/broker.pem" -keystore "$TLS/broker.p12" \
    "${ks[@]}" "$pass" >/dev/null 2>&1
  log "made a test CA ($TLS/ca.pem) and the broker's certificate"
}

write_config() {
  local listeners="PLAINTEXT://$HOST:$PORT" protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ -n "$SASL_SSL_PORT" ]]; then
    listeners="$listeners,SASL_SSL://127.0.0.1:$SASL_SSL_PORT"
    protocols="$protocols,SASL_SSL:SASL_SSL"
  fi
  cat >"$STATE/server.properties" <<EOF
# Written by scripts/kafka.sh: one KRaft node on loopback, for tests and demos.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=$listeners,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$STATE/data
# One node: every internal topic has one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# A group's first member gets its partitions at once instead of after 3 s.
group.initial.rebalance.delay.ms=0
# As in docker-compose: topics are created on purpose (roomflow creates its own), never by a typo.
auto.create.topics.enable=false
EOF
  if [[ -n "$SASL_SSL_PORT" ]]; then
    local pass
    pass="$(cat "$TLS/store.password")"
    cat >>"$STATE/server.properties" <<EOF
# TLS + SASL/SCRAM-SHA-512 for clients on $SASL_SSL_PORT (KAFKA_SASL_SSL_PORT).
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS/broker.p12
ssl.keystore.password=$pass
ssl.key.password=$pass
EOF
  fi
}

start() {
  install
  if running; then
    log "already running (pid $(cat "$PIDFILE")) on $HOST:$PORT"
    return 0
  fi
  for port in "$PORT" "$CONTROLLER_PORT"; do
    if listening "$port"; then
      log "something else listens on $HOST:$port: set KAFKA_PORT to another port, or set"
      log "KAFKA_BROKERS to use a broker that already runs"
      return 1
    fi
  done
  if [[ -n "$SASL_SSL_PORT" ]]; then
    if listening "$SASL_SSL_PORT"; then
      log "something else listens on 127.0.0.1:$SASL_SSL_PORT: set KAFKA_SASL_SSL_PORT to another port"
      return 1
    fi
    [[ -n "${KAFKA_SCRAM_PASSWORD:-}" ]] || {
      log "KAFKA_SASL_SSL_PORT is set: set KAFKA_SCRAM_PASSWORD too (the SCRAM user's password)"
      return 1
    }
    make_certificates
  fi
  write_config
  if [[ ! -f "$STATE/data/meta.properties" ]]; then
    local cluster_id
    cluster_id="$("$JAVA" -cp "$ROOT/libs/*" kafka.tools.StorageTool random-uuid)"
    "$JAVA" -Dlog4j2.level=WARN -cp "$ROOT/libs/*" kafka.tools.StorageTool format --standalone \
      -t "$cluster_id" -c "$STATE/server.properties" >"$STATE/format.log" 2>&1 || {
      log "formatting $STATE/data failed:"
      cat "$STATE/format.log" >&2
      return 1
    }
  fi
  local began=$SECONDS
  nohup "$JAVA" "-Xmx$HEAP" "-Xms$HEAP" -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$PWD/deploy/kafka/log4j2.xml" -Dkafka.logs.dir="$STATE" \
    -cp "$ROOT/libs/*" kafka.Kafka "$STATE/server.properties" >"$STATE/stdout.log" 2>&1 &
  echo $! >"$PIDFILE"
  if answers "$TIMEOUT"; then
    if [[ -n "$SASL_SSL_PORT" ]]; then
      "$JAVA" -Dlog4j2.level=OFF -Dlog4j2.StatusLogger.level=OFF -cp "$ROOT/libs/*" \
        deploy/kafka/ScramUser.java "$HOST:$PORT" "${KAFKA_SCRAM_USER:-roomflow}" || {
        log "creating the SCRAM user failed; the broker's log is $LOG"
        stop >/dev/null 2>&1 || true
        return 1
      }
      log "TLS + SASL/SCRAM-SHA-512 on 127.0.0.1:$SASL_SSL_PORT for user ${KAFKA_SCRAM_USER:-roomflow}" \
        "(CA: $TLS/ca.pem)"
    fi
    log "Apache Kafka $VERSION answering on $HOST:$PORT after $((SECONDS - began)) s" \
      "(pid $(cat "$PIDFILE"), log $LOG)"
    return 0
  fi
  if running; then
    log "Apache Kafka did not answer a metadata request within $TIMEOUT s; its log is $LOG:"
  else
    log "Apache Kafka exited during start; its log is $LOG (and $STATE/stdout.log):"
  fi
  tail -n 20 "$LOG" "$STATE/stdout.log" >&2 2>/dev/null || true
  stop >/dev/null 2>&1 || true
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
  # SIGTERM is a controlled shutdown; one node with small logs needs a few seconds.
  kill "$pid"
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored SIGTERM for 30 s; killing it"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  log "stopped (pid $pid)"
}

status() {
  if running; then
    echo "Apache Kafka $VERSION running: pid $(cat "$PIDFILE"), $HOST:$PORT, data $STATE/data, log $LOG"
  else
    echo "Apache Kafka not running (state $STATE)"
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
