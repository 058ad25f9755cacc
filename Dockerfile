# roomflow in a container: built in the Rust image, run from a slim Debian one.
#   docker build -t roomflow .        (docker compose builds it for you)
#   docker run --rm roomflow --help

# ---- build ---------------------------------------------------------------------------------
FROM rust:1.95-slim-trixie AS build
# librdkafka is compiled from source by rdkafka-sys (make, a C/C++ compiler); zlib for it, and
# OpenSSL for TLS and SASL/SCRAM.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make g++ pkg-config zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY dataflows dataflows
COPY src src
COPY examples examples
# The cache mounts keep the registry and the compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin roomflow \
 && cp target/release/roomflow /usr/local/bin/roomflow

# ---- run -----------------------------------------------------------------------------------
FROM debian:13.2-slim
# curl for the health check; CA certificates and OpenSSL for TLS connections to Kafka or MongoDB.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3t64 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 roomflow
COPY --from=build /usr/local/bin/roomflow /usr/local/bin/roomflow
COPY samples /usr/share/roomflow/samples
USER roomflow
# 9898: --metrics (/metrics, /livez, /readyz). 2101: timely's port between processes (-n > 1).
# 8080: `roomflow dashboard` (with --listen 0.0.0.0:8080).
EXPOSE 9898 2101 8080
ENTRYPOINT ["roomflow"]
CMD ["--help"]
