//! One audit device: its settings (parsed from the options), its salt, and the writer of its
//! output (see `sink`).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::AuditEntry;
use super::sink::{
    AckChannel, FileOptions, FileOut, Fsync, Inline, Job, Output, Rotate, SharedFile, SharedOut,
    SocketOut, SocketType, StdoutOut, SyslogOut, Writer, facility_code,
};
use crate::error::{Error, Result};

/// How a device's output is opened.
enum Kind {
    Discard,
    Stdout,
    File {
        path: PathBuf,
        options: FileOptions,
    },
    Socket {
        kind: SocketType,
        address: String,
        timeout: Duration,
    },
    Syslog {
        facility: u8,
        tag: String,
    },
}

/// Entry encodings (`format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Jsonx,
}

/// An enabled device.
pub struct Device {
    /// Its table row.
    pub entry: AuditEntry,
    salt: String,
    /// HMAC-SHA256 keyed with the salt (cloned per value: the key schedule runs once).
    mac: Hmac<Sha256>,
    pub(super) hmac_accessor: bool,
    pub(super) log_raw: bool,
    pub(super) elide_list_responses: bool,
    prefix: String,
    format: Format,
    kind: Kind,
    /// The writer thread's queue, once the output is open.
    writer: std::sync::OnceLock<Arc<Writer>>,
    /// Serialises opening the output (once).
    opening: Mutex<()>,
    /// An open runs off the request path ([`Device::open_in_background`]), or failed less
    /// than [`REOPEN_EVERY`] ago.
    reopening: std::sync::atomic::AtomicBool,
    /// A file device's file, for the inline fast path.
    file: std::sync::OnceLock<Arc<SharedFile>>,
    /// Vault's per-device timers `vault.audit.<path>.log_request` and `.log_response`.
    timers: [std::sync::OnceLock<metrics::Histogram>; 2],
}

impl Device {
    /// Times one entry of this device (submitted at `since`) as Vault's
    /// `vault.audit.<path>.log_request` / `.log_response`.
    pub(super) fn time_entry(&self, response: bool, since: std::time::Instant) {
        let [request_timer, response_timer] = &self.timers;
        let (cell, kind) = if response {
            (response_timer, "response")
        } else {
            (request_timer, "request")
        };
        crate::telemetry::record_ms(
            cell,
            || format!("vault.audit.{}.log_{kind}", self.entry.path),
            since,
        );
    }
}

/// How long [`Device::open`] waits for an output to open.
const OPEN_DEADLINE: Duration = Duration::from_secs(2);
/// Beyond a socket's own `write_timeout` (its dial's limit), before [`Device::open`] gives up.
const OPEN_SLACK: Duration = Duration::from_millis(500);
/// At most one open from the request path per device in this time.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

const HASH_PREFIX: &str = "hmac-sha256:";
const HASH_LEN: usize = HASH_PREFIX.len() + 64;

/// `hmac-sha256:<64 hex digits>`, on the stack.
#[derive(Clone, Copy)]
pub(super) struct HashText([u8; HASH_LEN]);

impl HashText {
    pub(super) fn as_str(&self) -> &str {
        // Always ASCII (the prefix and hex digits).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Go's `strconv.ParseBool`, as Vault reads device options (`log_raw`, `skip_test`, ...).
pub fn parse_bool(v: &str) -> Result<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(Error::bad(format!(
            "strconv.ParseBool: parsing \"{v}\": invalid syntax"
        ))),
    }
}

impl Device {
    /// What Vault checks only when a device is enabled: a file device with `mode` "0000" keeps
    /// the mode of its file, which must therefore exist (Vault's `stat` error otherwise). At
    /// unseal such a device is opened like any other.
    pub(super) fn check_new(&self) -> Result<()> {
        if let Kind::File { path, options } = &self.kind
            && options.mode.is_none()
            && let Err(e) = std::fs::metadata(path)
        {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
                _ => e.to_string(),
            };
            return Err(Error::bad(format!("stat {}: {why}", path.display())));
        }
        Ok(())
    }

    /// A device from its table row and salt; option errors are 400s. A `file_path` inside
    /// `plugin_directory` is refused.
    pub fn new(entry: AuditEntry, salt: String, plugin_directory: Option<&Path>) -> Result<Device> {
        let o = &entry.options;
        let flag = |name: &str, default: bool| -> Result<bool> {
            o.get(name).map_or(Ok(default), |v| parse_bool(v))
        };
        let hmac_accessor = flag("hmac_accessor", true)?;
        let log_raw = flag("log_raw", false)?;
        let elide_list_responses = flag("elide_list_responses", false)?;
        let format = match o.get("format").map(String::as_str) {
            None | Some("json") => Format::Json,
            Some("jsonx") => Format::Jsonx,
            Some(other) => return Err(Error::bad(format!("unknown format type \"{other}\""))),
        };
        let prefix = o.get("prefix").cloned().unwrap_or_default();
        let kind = match entry.kind.as_str() {
            "file" => file_kind(o, plugin_directory)?,
            "socket" => socket_kind(o)?,
            "syslog" => {
                let name = o.get("facility").map_or("AUTH", String::as_str);
                let facility = facility_code(name)
                    .ok_or_else(|| Error::bad(format!("invalid syslog facility: {name}")))?;
                Kind::Syslog {
                    facility,
                    tag: o.get("tag").cloned().unwrap_or_else(|| "vault".into()),
                }
            }
            other => {
                return Err(Error::bad(format!("unknown backend type: \"{other}\"")));
            }
        };
        let mac = Hmac::<Sha256>::new_from_slice(salt.as_bytes())
            .map_err(|_| Error::internal("audit salt cannot key an HMAC"))?;
        Ok(Device {
            entry,
            salt,
            mac,
            hmac_accessor,
            log_raw,
            elide_list_responses,
            prefix,
            format,
            kind,
            writer: std::sync::OnceLock::new(),
            opening: Mutex::new(()),
            reopening: std::sync::atomic::AtomicBool::new(false),
            file: std::sync::OnceLock::new(),
            timers: Default::default(),
        })
    }

    /// The device's salt (the HMAC key).
    pub(super) fn salt(&self) -> &str {
        &self.salt
    }

    /// Where the device writes, for the server log (a file path, an address, `syslog`).
    pub(super) fn target(&self) -> String {
        match &self.kind {
            Kind::Discard => "discard".into(),
            Kind::Stdout => "stdout".into(),
            Kind::File { path, .. } => path.display().to_string(),
            Kind::Socket { address, .. } => address.clone(),
            Kind::Syslog { .. } => "syslog".into(),
        }
    }

    /// `hmac-sha256:<hex>` of `value` under this device's salt (what `sys/audit-hash` returns).
    pub fn hash(&self, value: &str) -> String {
        self.hash_text(value).as_str().to_string()
    }

    /// [`Device::hash`] without an allocation.
    pub(super) fn hash_text(&self, value: &str) -> HashText {
        let mut mac = self.mac.clone();
        mac.update(value.as_bytes());
        let mut text = [0u8; HASH_LEN];
        let (head, hex) = text.split_at_mut(HASH_PREFIX.len());
        head.copy_from_slice(HASH_PREFIX.as_bytes());
        let _ = hex::encode_to_slice(mac.finalize().into_bytes(), hex);
        HashText(text)
    }

    /// Opens the output and starts its writer (a no-op for `discard` and when already
    /// started): the enable-time sanity check, a 400 naming the reason. The open runs on a
    /// blocking thread and is given up after [`OPEN_DEADLINE`] (a socket's `write_timeout` when
    /// longer): a peer that never accepts (a Unix socket with a full backlog blocks `connect`
    /// without any timeout) costs the caller that long, and no async worker is held.
    pub async fn open(self: &Arc<Self>) -> Result<()> {
        if self.is_open() {
            return Ok(());
        }
        let device = self.clone();
        let opened = tokio::task::spawn_blocking(move || device.open_blocking());
        let deadline = match &self.kind {
            Kind::Socket { timeout, .. } => OPEN_DEADLINE.max(*timeout + OPEN_SLACK),
            _ => OPEN_DEADLINE,
        };
        let r = match tokio::time::timeout(deadline, opened).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(std::io::Error::other(e.to_string())),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("not open after {deadline:?}"),
            )),
        };
        r.map_err(|e| match &self.kind {
            Kind::File { path, .. } => Error::bad(format!(
                "sanity check failed; unable to open \"{}\" for writing: {e}",
                path.display()
            )),
            Kind::Socket { address, .. } => {
                Error::bad(format!("error connecting to \"{address}\": {e}"))
            }
            _ => Error::bad(e.to_string()),
        })
    }

    /// Starts opening the output on a blocking thread, unless it is open, an open is running,
    /// or the last one failed less than [`REOPEN_EVERY`] ago (its thread waits that long before
    /// letting the next one start). For the request path, which never opens anything itself: a
    /// device that could not be opened at unseal comes back this way.
    pub(super) fn open_in_background(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.is_open()
            || tokio::runtime::Handle::try_current().is_err()
            || self
                .reopening
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let device = self.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            if let Err(e) = device.open_blocking() {
                tracing::warn!(audit.path = %device.entry.path, error = %e, "audit device still cannot be opened");
                std::thread::sleep(REOPEN_EVERY.saturating_sub(started.elapsed()));
            }
            device.reopening.store(false, Ordering::Release);
        });
    }

    /// The writer if the output is open (`None` for `discard`); never opens anything.
    fn writer(&self) -> std::io::Result<Option<&Arc<Writer>>> {
        if let Some(w) = self.writer.get() {
            return Ok(Some(w));
        }
        if matches!(self.kind, Kind::Discard) {
            return Ok(None);
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "the audit device is not open",
        ))
    }

    /// Opens the output and starts its writer, on the calling thread (which may block for as
    /// long as the output takes: call it from a blocking thread).
    fn open_blocking(&self) -> std::io::Result<()> {
        if self.writer.get().is_some() || matches!(self.kind, Kind::Discard) {
            return Ok(());
        }
        let _opening = self
            .opening
            .lock()
            .map_err(|_| std::io::Error::other("audit writer lock poisoned"))?;
        if self.writer.get().is_some() {
            return Ok(());
        }
        let output: Box<dyn Output> = match &self.kind {
            Kind::Discard => return Ok(()),
            Kind::Stdout => Box::new(StdoutOut),
            Kind::File { path, options } => {
                let shared = SharedFile::new(FileOut::open(path.clone(), *options)?);
                let _ = self.file.set(shared.clone());
                Box::new(SharedOut(shared))
            }
            Kind::Socket {
                kind,
                address,
                timeout,
            } => Box::new(SocketOut::open(*kind, address.clone(), *timeout)?),
            Kind::Syslog { facility, tag } => Box::new(SyslogOut::open(*facility, tag.clone())?),
        };
        let _ = self
            .writer
            .set(Arc::new(Writer::start(output, &self.entry.path)?));
        Ok(())
    }

    /// Whether the output is open (or needs none: `discard`).
    pub fn is_open(&self) -> bool {
        matches!(self.kind, Kind::Discard) || self.writer.get().is_some()
    }

    /// Closes and reopens a file device's file after the lines already queued (SIGHUP).
    pub(super) fn reopen(&self) {
        if !matches!(self.kind, Kind::File { .. }) {
            return;
        }
        if let Some(w) = self.writer.get() {
            w.reopen();
        }
    }

    /// Writes a synthetic request entry, as Vault does at enable time, within `deadline`.
    pub(super) async fn probe(&self, deadline: Duration) -> std::io::Result<()> {
        let entry = serde_json::json!({
            "time": crate::clock::rfc3339_nanos(std::time::SystemTime::now()),
            "type": "request",
            "auth": {"token_type": "default"},
            "request": {"id": crate::ids::uuid_v4(), "operation": "update",
                        "namespace": {"id": "root"}, "path": "sys/audit/test"},
        });
        let mut json = Vec::new();
        super::format::write_entry(&mut json, &entry)?;
        let mut acks = AckChannel::default();
        if let Some(r) = self.submit(&self.encode(&json)?, 0, &mut acks) {
            return r;
        }
        match tokio::time::timeout(deadline, acks.recv()).await {
            Ok(Some((_, r))) => r,
            _ => Err(std::io::Error::other("timed out writing the test message")),
        }
    }

    /// The line of one entry given as Vault's JSON: prefix, the entry in the device's
    /// format, newline.
    pub(super) fn encode(&self, json: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut line = Vec::with_capacity(self.prefix.len() + json.len() + 1);
        self.line(&mut line, |out| out.extend_from_slice(json))?;
        Ok(line)
    }

    /// Appends one entry's line to `out`: prefix, the entry `build` writes as Vault's JSON (in
    /// the device's format), newline.
    pub(super) fn line(
        &self,
        out: &mut Vec<u8>,
        build: impl FnOnce(&mut Vec<u8>),
    ) -> std::io::Result<()> {
        out.extend_from_slice(self.prefix.as_bytes());
        match self.format {
            Format::Json => build(out),
            Format::Jsonx => {
                let mut json = Vec::new();
                build(&mut json);
                let tree: serde_json::Value = serde_json::from_slice(&json)?;
                super::format::write_jsonx(out, &tree)?;
            }
        }
        out.push(b'\n');
        Ok(())
    }

    /// Hands one encoded line (see [`Device::line`]) to the device. `Some`: decided at once
    /// (written inline, `discard`, a full queue, an output that cannot be opened); `None`: the
    /// outcome arrives on `ack` tagged `idx`.
    pub(super) fn submit(
        &self,
        line: &[u8],
        idx: usize,
        ack: &mut AckChannel,
    ) -> Option<std::io::Result<()>> {
        let writer = match self.writer() {
            Ok(Some(w)) => w,
            Ok(None) => return Some(Ok(())),
            Err(e) => {
                super::count_device_failure(&self.entry.path, "error", 1);
                return Some(Err(e));
            }
        };
        if let Some(file) = self.file.get() {
            match file.try_write_inline(line, idx, ack, writer) {
                Inline::Written => return Some(Ok(())),
                Inline::Queued => return None,
                Inline::Declined => {}
            }
        }
        writer.submit(Job {
            line: line.to_vec(),
            idx,
            ack: ack.sender().clone(),
        });
        None
    }
}

/// Go's `strconv.ParseUint(m, 8, 32)`, digit by digit as Go reads it: a character that is not
/// an octal digit is `invalid syntax`, a value past 32 bits `value out of range`, whichever
/// comes first (Rust's parser would also take a leading `+`).
fn go_parse_octal32(m: &str) -> std::result::Result<u32, &'static str> {
    if m.is_empty() {
        return Err("invalid syntax");
    }
    let mut n: u32 = 0;
    for b in m.bytes() {
        if !(b'0'..=b'7').contains(&b) {
            return Err("invalid syntax");
        }
        n = n
            .checked_mul(8)
            .and_then(|n| n.checked_add(u32::from(b - b'0')))
            .ok_or("value out of range")?;
    }
    Ok(n)
}

/// The output of a `file` device.
fn file_kind(o: &BTreeMap<String, String>, plugin_directory: Option<&Path>) -> Result<Kind> {
    let file_path = o
        .get("file_path")
        .or_else(|| o.get("path"))
        .cloned()
        .unwrap_or_default();
    if file_path.is_empty() {
        return Err(Error::bad("file_path is required"));
    }
    let mode = match o.get("mode") {
        None => Some(0o600),
        Some(m) => {
            let bits = go_parse_octal32(m)
                .map_err(|why| Error::bad(format!("strconv.ParseUint: parsing \"{m}\": {why}")))?;
            // Go's file type bits (directory, pipe, device, ...).
            if bits & 0xfff8_0000 != 0 {
                return Err(Error::bad("file mode does not represent a regular file"));
            }
            // Never executable (HCSEC-2025-14); "0000" keeps the existing mode.
            (bits != 0).then_some(bits & 0o666)
        }
    };
    Ok(match file_path.to_ascii_lowercase().as_str() {
        "discard" => Kind::Discard,
        "stdout" => Kind::Stdout,
        _ => {
            let path = PathBuf::from(file_path);
            if let Some(dir) = plugin_directory
                && inside(&path, dir)
            {
                return Err(Error::bad(
                    "sanity check failed; cannot write audit log into the plugin directory",
                ));
            }
            Kind::File {
                path,
                options: FileOptions {
                    mode,
                    fsync: fsync_option(o)?,
                    rotate: rotate_options(o)?,
                },
            }
        }
    })
}

/// `max_bytes`, `max_age` and `max_files` (Coffer's options of a `file` device): built-in
/// rotation, for hosts without `logrotate`. Whole positive numbers and a positive Go duration.
fn rotate_options(o: &BTreeMap<String, String>) -> Result<Rotate> {
    let count = |name: &str| -> Result<Option<u64>> {
        o.get(name)
            .map(|v| match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(Error::bad(format!(
                    "invalid {name}: {v:?} is not a positive whole number"
                ))),
            })
            .transpose()
    };
    let max_age = match o.get("max_age") {
        None => None,
        Some(text) => {
            let nanos = crate::logical::duration::parse_duration_nanos(text)
                .map_err(|e| Error::bad(format!("invalid max_age: {e}")))?;
            match u64::try_from(nanos) {
                Ok(n) if n > 0 => Some(Duration::from_nanos(n)),
                _ => {
                    return Err(Error::bad(format!(
                        "invalid max_age: {text:?} is not a positive duration"
                    )));
                }
            }
        }
    };
    Ok(Rotate {
        max_bytes: count("max_bytes")?,
        max_age,
        max_files: count("max_files")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    })
}

/// `fsync_interval` (Coffer's option of a `file` device): absent, the kernel writes the file to
/// disk when it likes (Vault's behaviour: a crash of the process loses nothing, a power loss
/// may); `"0s"`, every write is on disk before its entries are acknowledged; a longer Go
/// duration, the writer thread syncs the file at most that long after a write.
fn fsync_option(o: &BTreeMap<String, String>) -> Result<Fsync> {
    let Some(text) = o.get("fsync_interval") else {
        return Ok(Fsync::Never);
    };
    let nanos = crate::logical::duration::parse_duration_nanos(text)
        .map_err(|e| Error::bad(format!("invalid fsync_interval: {e}")))?;
    match u64::try_from(nanos) {
        Ok(0) => Ok(Fsync::EveryWrite),
        Ok(n) => Ok(Fsync::Within(Duration::from_nanos(n))),
        Err(_) => Err(Error::bad(format!(
            "invalid fsync_interval: {text:?} is negative"
        ))),
    }
}

/// Whether `path` lies in `dir` (both made absolute and, as far as they exist, canonical).
fn inside(path: &Path, dir: &Path) -> bool {
    absolute(path, 0).starts_with(absolute(dir, 0))
}

/// `p` made absolute, `..` resolved lexically first (so a missing directory cannot hide it),
/// then its longest existing ancestor canonicalised. A dangling symbolic link on the way is
/// followed to where it points (opening the file would create its target there).
fn absolute(p: &Path, depth: u8) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut lexical = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                lexical.pop();
            }
            std::path::Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let mut existing = lexical.as_path();
    let mut rest = Vec::new();
    let with_rest = |base: PathBuf, rest: &[std::ffi::OsString]| {
        rest.iter().rev().fold(base, |acc, r| acc.join(r))
    };
    loop {
        if let Ok(c) = existing.canonicalize() {
            return with_rest(c, &rest);
        }
        if depth < 40
            && let Ok(target) = std::fs::read_link(existing)
        {
            let base = existing.parent().unwrap_or(Path::new("/"));
            return with_rest(absolute(&base.join(target), depth + 1), &rest);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return lexical.clone(),
        }
    }
}

/// The output of a `socket` device: `address` (required), `socket_type` (`tcp`),
/// `write_timeout` (`2s`, for the dial and each write).
fn socket_kind(o: &BTreeMap<String, String>) -> Result<Kind> {
    let address = o.get("address").cloned().unwrap_or_default();
    if address.is_empty() {
        return Err(Error::bad("address is required"));
    }
    let socket_type = o.get("socket_type").map_or("tcp", String::as_str);
    let kind = SocketType::parse(socket_type)
        .ok_or_else(|| Error::bad(format!("dial {socket_type}: unknown network {socket_type}")))?;
    let timeout = o.get("write_timeout").map_or("2s", String::as_str);
    let nanos = crate::logical::duration::parse_duration_nanos(timeout).map_err(Error::bad)?;
    // A zero or negative timeout would mean "none" to the socket calls: keep a floor.
    let nanos = u64::try_from(nanos).unwrap_or(0).max(1_000_000);
    Ok(Kind::Socket {
        kind,
        address,
        timeout: Duration::from_nanos(nanos),
    })
}
