# syntax=docker/dockerfile:1
# The `ennio` command in a container: coordinator, agent and every query subcommand.
#
#   docker build -t ennio-events .
#   docker run --rm ennio-events --help
#   docker compose up        (see docker-compose.yml: nats, a coordinator and two agents)

# --- Build -----------------------------------------------------------------------------------
FROM swift:6.3-bookworm AS builder

# The coordinator's history uses the system SQLite (Sources/CSQLite); TLS, NKEYs and SHA-256
# use the system OpenSSL 3 (Sources/COpenSSL).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build
# The manifest names the test targets under Tests/, so they must be present for it to resolve
# (they are not built).
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests

RUN swift build -c release --product ennio \
    && mkdir -p /staging \
    && cp "$(swift build -c release --show-bin-path)/ennio" /staging/ennio

# --- Run -------------------------------------------------------------------------------------
FROM swift:6.3-bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-0 libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

COPY --from=builder /staging/ennio /usr/local/bin/ennio

# An unprivileged user; /data (the coordinator's SQLite history, usually a volume) belongs to it.
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin ennio \
    && mkdir -p /data \
    && chown ennio:ennio /data
USER ennio
WORKDIR /data
VOLUME ["/data"]

# Every long-running subcommand stops cleanly on SIGTERM (the agent says goodbye first).
STOPSIGNAL SIGTERM
ENTRYPOINT ["ennio"]
CMD ["--help"]
