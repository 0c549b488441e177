//! Coffer: a small, fast, Vault-compatible secrets server.
//!
//! The data path, top to bottom:
//! `http` (axum: transport, envelope) → `core` (mount table, pipeline: token, existence check,
//! ACL) → `mounts` (sys, token, … backends built on `logical`'s path tables) → `storage` views →
//! `physical` engines. `policy` compiles ACLs; `token` stores tokens as salted HMACs.
//! See `docs/ARCHITECTURE.md` for the map.

pub mod audit;
pub mod barrier;
pub mod clock;
pub mod config;
pub mod core;
pub mod error;
pub mod ha;
pub(crate) mod hcl;
pub mod http;
pub mod ids;
pub mod logical;
pub mod mounts;
pub mod physical;
pub mod policy;
pub mod production;
pub mod seal;
pub mod secret;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod token;
