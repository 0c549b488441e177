# Coffer, production mode on a single node: `coffer server -config=config/server.hcl`.
# The server starts sealed; run `vault operator init` once, then `vault operator unseal` after
# every start. The syntax is Vault's server config (HCL1); see README.md, "Production mode".

# Durable storage. Coffer keeps an embedded, crash-safe database in this directory; every value in
# it is encrypted by the barrier. The directory must be writable by the user running Coffer.
storage "file" {
  path = "/var/lib/coffer"
}

# The HTTPS listener clients connect to.
listener "tcp" {
  # Every interface, Vault's usual port. Use "127.0.0.1:8200" to accept local clients only.
  address = "0.0.0.0:8200"

  # PEM certificate chain (server certificate first) and its private key. Both files must exist
  # when Coffer starts, or it refuses to start and names the missing file.
  tls_cert_file = "/etc/coffer/tls/cert.pem"
  tls_key_file  = "/etc/coffer/tls/key.pem"

  # Lowest protocol version offered: "tls12" (the default) or "tls13".
  tls_min_version = "tls12"

  # Largest request body accepted, in bytes (32 MiB, the default).
  max_request_size = 33554432

  # Connection timeouts (Vault's defaults): request headers within 10 s, the whole request
  # within 30 s, no limit on writing the response, idle keep-alive connections closed after 5 m.
  http_read_header_timeout = "10s"
  http_read_timeout        = "30s"
  http_write_timeout       = "0"
  http_idle_timeout        = "5m"
}

# The address clients are given for this server; it should match a name in the certificate.
api_addr = "https://coffer.example.com:8200"

# Token and lease lifetimes when a role or mount does not set its own (768h is also the default).
default_lease_ttl = "768h"
max_lease_ttl     = "768h"

# Metrics at GET /v1/sys/metrics?format=prometheus, for a token allowed to read sys/metrics (add
# `telemetry { unauthenticated_metrics_access = true }` to a listener to scrape without one).
# A series that sees no update for prometheus_retention_time leaves the output; "0" turns the
# Prometheus format off (the JSON format stays).
telemetry {
  prometheus_retention_time = "24h"
}

# An audit trail: every request and response as one JSON line, secrets HMAC'd. Devices declared
# here are enabled at unseal (the API may not create them unless unsafe_allow_api_audit_creation
# is set), cannot be disabled through the API, and are re-read on SIGHUP, which also reopens the
# file after logrotate renamed it. Uncomment once /var/log/coffer exists and is writable by Coffer.
# audit "file" "to-file" {
#   description = "audit trail"
#   options {
#     file_path = "/var/log/coffer/audit.log"
#     mode      = "0600"
#   }
# }

# Logging: one of trace, debug, info, warn, error; "standard" lines or "json" objects.
log_level  = "info"
log_format = "standard"

# Coffer does not lock its memory against swapping, so Vault's switch for that has no effect; it
# is accepted (with a log line) so that existing Vault configs start unchanged. Run Coffer on a
# host without swap, or with encrypted swap.
disable_mlock = true
