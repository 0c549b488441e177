# One node of a Coffer HA cluster on PostgreSQL. Every node gets the same file except api_addr
# (its own address, reachable by the other nodes and by clients) — or leave api_addr out and set
# VAULT_API_ADDR per node. All nodes share one database; exactly one is active, the others are
# standbys that forward requests to it.

storage "postgresql" {
  # Or leave this out and set VAULT_PG_CONNECTION_URL (which wins when both are set).
  connection_url = "postgres://coffer:CHANGE-ME@db.example.com:5432/coffer?sslmode=verify-full&sslrootcert=/etc/coffer/pg-ca.pem"

  ha_enabled = "true"            # exactly "true"
  ha_table   = "vault_ha_locks"  # Vault's default; created when missing

  # Coffer's lock timings (defaults shown). A killed active node is replaced after at most
  # ha_lock_ttl + ha_lock_retry_interval; a stopped or stepped-down one at once.
  # Vault's timings, for parity: "15s", "5s", "1s".
  ha_lock_ttl            = "8s"
  ha_lock_renew_interval = "2s"     # at most a third of ha_lock_ttl
  ha_lock_retry_interval = "500ms"
}

listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/etc/coffer/tls/server.crt"
  tls_key_file  = "/etc/coffer/tls/server.key"
}

# This node's address: where standbys forward to and what sys/leader reports.
api_addr = "https://coffer-1.example.com:8200"
