# Development settings, equivalent to `coffer server -dev`: in-memory storage, no TLS.
# Production mode (-config with file storage, seal/unseal, TLS) is being built; see README.
storage "inmem" {}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
