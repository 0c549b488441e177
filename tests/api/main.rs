//! The single integration-test binary: every module talks to a real server over HTTP.

// Helpers outside `#[test]` functions may fail loudly; some are used by only a few modules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

mod binary;
mod cli;
mod common;
mod http_layer;
mod kv;
mod policies;
mod sys_mounts;
mod tls;
mod tokens;
mod wrapping;
