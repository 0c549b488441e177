# A throw-away server from a config file: in-memory storage, plain HTTP on loopback.
# Unlike `coffer server -dev`, a server started with this file is uninitialised and sealed at start
# (`vault operator init`, then `vault operator unseal`), mounts no kv engine at secret/, and loses
# everything when it stops. For durable storage and TLS see config/server.hcl.
storage "inmem" {}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
