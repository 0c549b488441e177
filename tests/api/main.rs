//! The single integration-test binary: every module talks to a real server over HTTP.

// A test binary fails loudly on purpose; the crate-wide denials target the server code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a test failure"
)]

mod acl_cost;
mod acl_list;
mod approle;
mod audit;
mod audit_declared;
mod audit_devices;
mod audit_vs_openbao;
mod binary;
mod cli;
mod cli_guide;
mod clients;
#[allow(dead_code, reason = "shared helpers; not every module uses every one")]
mod common;
mod cors;
mod diagnostics;
mod ha;
mod http_layer;

mod jenkins;
mod jwt;
mod kv;
mod leases;
mod logs;
mod metrics;
mod names;
mod observer;
mod operator;
mod policies;
mod postgresql;
mod production;
mod quotas;
mod sys_mounts;
mod sys_remount;
mod sys_tools;
mod tls;
mod token_races;
mod token_roles;
mod tokens;
mod transport;
mod wrapping;
