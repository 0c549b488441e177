# Coffer on PostgreSQL (single node): the data lives in the table vault_kv_store, Vault's layout,
# created when missing. Every value is encrypted by Coffer before it reaches the database.
# For several nodes sharing the database (HA), see config/ha-postgresql.hcl.

storage "postgresql" {
  # Or leave this out and set VAULT_PG_CONNECTION_URL (which wins when both are set), so the
  # password stays out of the file. TLS as libpq's sslmode: disable, prefer (default, unchecked),
  # require, verify-ca, verify-full; sslrootcert names the CA file (PEM) to trust.
  connection_url = "postgres://coffer:CHANGE-ME@db.example.com:5432/coffer?sslmode=verify-full&sslrootcert=/etc/coffer/pg-ca.pem"

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
