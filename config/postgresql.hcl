# Coffer on PostgreSQL (single node): the data lives in the table vault_kv_store, Vault's layout,
# created when missing. Every value is encrypted by Coffer before it reaches the database.
# For several nodes sharing the database (HA), see config/ha-postgresql.hcl.

storage "postgresql" {
  # Or leave this out and set VAULT_PG_CONNECTION_URL (which wins when both are set), so the
  # password stays out of the file. TLS to the database is not supported yet: sslmode=disable
  # (a loopback or otherwise protected network); require/verify-ca/verify-full are refused.
  connection_url = "postgres://coffer:CHANGE-ME@127.0.0.1:5432/coffer?sslmode=disable"

  # Vault's defaults, shown for reference.
  table        = "vault_kv_store"
  max_parallel = "128"
}

listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/etc/coffer/tls/server.crt"
  tls_key_file  = "/etc/coffer/tls/server.key"
}

api_addr = "https://coffer.example.com:8200"
