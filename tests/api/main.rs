//! The single integration-test binary: every module talks to a real server over HTTP.

// Test code fails loudly on purpose; the no-panic lints guard the server, not its tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod binary;
mod cli;
mod common;
mod http_layer;
mod policies;
mod sys_mounts;
mod tls;
mod tokens;
mod wrapping;
