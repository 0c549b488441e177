# The container's default configuration: durable storage in the /var/lib/coffer volume and a
# plain-HTTP listener on all interfaces. Put TLS in front (or mount certificates and switch to the
# TLS listener of config/server.hcl) before exposing it beyond a private network.
storage "file" {
  path = "/var/lib/coffer"
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true
}

disable_mlock = true
