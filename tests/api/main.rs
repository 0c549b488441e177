//! The single integration-test binary: every module talks to a real server over HTTP.

mod common;
mod http_layer;
mod policies;
mod sys_mounts;
mod tokens;
