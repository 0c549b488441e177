# Build stage: a release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The benchmark is a workspace member: cargo needs its manifest and sources to load the workspace.
COPY bench/Cargo.toml ./bench/
COPY bench/src ./bench/src
RUN cargo build --release --locked --bin coffer

# Runtime stage: small image, non-root user, durable data in a volume.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/coffer coffer \
    && mkdir -p /var/lib/coffer /etc/coffer \
    && chown coffer /var/lib/coffer
COPY --from=build /src/target/release/coffer /usr/local/bin/coffer
COPY config/docker.hcl /etc/coffer/server.hcl
USER coffer
EXPOSE 8200
VOLUME /var/lib/coffer
# Sealed and uninitialised servers are still "alive": only a failing process is unhealthy. Works
# with the plain listener of config/docker.hcl and after switching it to TLS (the certificate is
# for the service name, not 127.0.0.1, so it is not verified for this local probe).
HEALTHCHECK --interval=30s --timeout=3s \
    CMD q="v1/sys/health?uninitcode=200&sealedcode=200&standbycode=200"; \
        curl -fsS "http://127.0.0.1:8200/$q" >/dev/null 2>&1 \
        || curl -fsSk "https://127.0.0.1:8200/$q" >/dev/null || exit 1
CMD ["coffer", "server", "-config=/etc/coffer/server.hcl"]
