# Build stage: a release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked

# Runtime stage: small image, non-root user.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home /var/lib/coffer coffer \
    && mkdir -p /var/lib/coffer && chown coffer /var/lib/coffer
COPY --from=build /src/target/release/coffer /usr/local/bin/coffer
USER coffer
EXPOSE 8200
VOLUME /var/lib/coffer
CMD ["coffer", "server", "-dev", "-dev-listen-address=0.0.0.0:8200"]
