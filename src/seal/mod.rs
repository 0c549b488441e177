//! The seal: what stands between a stopped server and its root key.
//!
//! `sys/init` generates the root key and splits it with [`shamir`]; `sys/unseal` collects shares,
//! combines them and hands the candidate root key to the barrier, whose AEAD-open of the keyring
//! decides whether it is right. The seal state machine itself lives in the core.

pub mod shamir;
