//! `sys/monitor` (a live copy of the server log, `vault monitor`) and `sys/loggers` (the level of
//! each logger at run time), over the process's log (`telemetry::logs`). Both are ordinary ACL
//! paths (`read` on `sys/monitor`; `read`/`update`/`delete` on `sys/loggers*`), as in Vault.
//!
//! A monitor streams lines until the client hangs up, the core seals (Vault's closing line is
//! written first) or the server shuts down; the seal and shutdown checks run every second, as
//! Vault's do. Where Vault compares `log_format` case-sensitively when choosing JSON (so
//! `JSON` passes the check but streams standard lines), any case selects JSON here.

use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::Frame;
use serde_json::{Map, Value};

use super::SystemBackend;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::logical::{
    FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response, Streamed,
};
use crate::telemetry::logs::{self, Logs, MonitorStream};

type P = PathSpec<SystemBackend>;

/// How often an open monitor checks whether the core sealed or the server is stopping.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Vault's last line of a monitor whose core sealed.
const SEALED_LINE: &str = "core received sealed state change, ending monitor session";

const LEVEL_HELP: &str =
    "Log verbosity level: \"trace\", \"debug\", \"info\", \"warn\" or \"error\".";

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    vec![
        P::new("monitor$")
            .field(
                "log_level",
                T::Str,
                "Lowest level of the lines streamed (default \"info\").",
            )
            .field("log_format", T::Str, "\"standard\" (default) or \"json\".")
            .on(Op::Read, |b, r, d| Box::pin(b.monitor(r, d))),
        P::new("loggers$")
            .field("level", T::Str, LEVEL_HELP)
            .on(Op::Read, |b, r, d| Box::pin(b.loggers_read(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.loggers_write(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.loggers_revert(r, d))),
        P::new("loggers/(?P<name>.*)$")
            .field("name", T::Str, "The logger.")
            .field("level", T::Str, LEVEL_HELP)
            .on(Op::Read, |b, r, d| Box::pin(b.logger_read(r, d)))
            .on(Op::Update, |b, r, d| Box::pin(b.logger_write(r, d)))
            .on(Op::Delete, |b, r, d| Box::pin(b.logger_revert(r, d))),
    ]
}

/// The process's log; a server embedded without [`logs::install`] has none to manage.
fn process_logs() -> Result<&'static Arc<Logs>> {
    logs::global().ok_or_else(|| Error::internal("this process's log is not managed by Coffer"))
}

/// The `level` field as Vault checks it.
fn level_field(d: &FieldData<'_>) -> Result<tracing::Level> {
    let Some(raw) = d.get_str("level")? else {
        return Err(Error::bad("level is required"));
    };
    if raw.is_empty() {
        return Err(Error::bad("level is empty"));
    }
    logs::parse_level(&raw).map_err(|e| Error::bad(format!("invalid level provided: {e}")))
}

/// The logger named in the path (`sys/loggers/` names none: Vault's 400).
fn logger_name(d: &FieldData<'_>) -> Result<String> {
    match d.get_str("name")? {
        Some(n) if !n.is_empty() => Ok(n),
        _ => Err(Error::bad("name is empty")),
    }
}

fn levels_response(levels: impl IntoIterator<Item = (&'static str, &'static str)>) -> Response {
    let data: Map<String, Value> = levels
        .into_iter()
        .map(|(name, level)| (name.to_string(), Value::from(level)))
        .collect();
    Response::data(data)
}

impl SystemBackend {
    async fn monitor(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let level = d.get_str("log_level")?.unwrap_or_default();
        let level = if level.is_empty() {
            "info".into()
        } else {
            level
        };
        let level = logs::parse_level(&level).map_err(|_| Error::bad("unknown log level"))?;
        let format = d
            .get_str("log_format")?
            .unwrap_or_default()
            .to_ascii_lowercase();
        let json = match format.as_str() {
            "" | "standard" => false,
            "json" => true,
            _ => return Err(Error::bad("unknown log format")),
        };
        let stream = process_logs()?.monitor(level, json);
        let core = self.core()?;
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let body = MonitorBody {
            stream,
            core: Arc::downgrade(&core),
            tick,
            done: false,
        };
        Ok(Some(Response {
            status: Some(200),
            content_type: Some("text/plain; charset=utf-8"),
            stream: Some(Streamed::new(axum::body::Body::new(body))),
            ..Default::default()
        }))
    }

    async fn loggers_read(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        Ok(Some(levels_response(process_logs()?.levels())))
    }

    async fn loggers_write(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let level = level_field(d)?;
        process_logs()?.set_all(level);
        Ok(None)
    }

    async fn loggers_revert(&self, _req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let logs = process_logs()?;
        logs.set_all(logs.configured());
        Ok(None)
    }

    async fn logger_read(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let name = logger_name(d)?;
        let level = process_logs()?.level(&name);
        Ok(Some(levels_response(level.map(|l| {
            let name = logs::LOGGERS
                .iter()
                .find(|n| **n == name)
                .copied()
                .unwrap_or_default();
            (name, l)
        }))))
    }

    async fn logger_write(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let name = logger_name(d)?;
        let level = level_field(d)?;
        if !process_logs()?.set(&name, level) {
            return Err(Error::bad(format!("logger {name:?} not found")));
        }
        Ok(None)
    }

    async fn logger_revert(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let name = logger_name(d)?;
        let logs = process_logs()?;
        if !logs.set(&name, logs.configured()) {
            return Err(Error::bad(format!("logger {name:?} not found")));
        }
        Ok(None)
    }
}

/// A monitor's response body: its lines as they come, until the client leaves (the body is
/// dropped, which ends the monitor), the core seals or the server stops.
struct MonitorBody {
    stream: MonitorStream,
    core: Weak<Core>,
    tick: tokio::time::Interval,
    done: bool,
}

impl http_body::Body for MonitorBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(line) = this.stream.poll_next(cx) {
            this.done = line.is_none();
            return Poll::Ready(line.map(|l| Ok(Frame::data(l))));
        }
        while this.tick.poll_tick(cx).is_ready() {
            let Some(core) = this.core.upgrade() else {
                this.done = true;
                return Poll::Ready(None);
            };
            if core.is_sealed() {
                this.done = true;
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                    SEALED_LINE.as_bytes(),
                )))));
            }
            if core.streams_closed() {
                this.done = true;
                return Poll::Ready(None);
            }
        }
        Poll::Pending
    }
}
