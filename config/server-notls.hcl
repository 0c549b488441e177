# Coffer with durable storage but without TLS, listening on the loopback interface only: for a
# host where a local reverse proxy terminates TLS, or for trying production mode (init, unseal,
# restart) on a laptop. Never expose a listener without TLS to a network.

# Durable, encrypted storage in this directory (an embedded crash-safe database).
storage "file" {
  path = "/var/lib/coffer"
}

# Plain HTTP on 127.0.0.1:8200; clients use VAULT_ADDR=http://127.0.0.1:8200.
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}

# The address clients are given for this server.
api_addr = "http://127.0.0.1:8200"
