//! One audit device: its settings (parsed from the options), its salt and its sink.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use super::AuditEntry;
use crate::error::{Error, Result};

/// Where a device's lines go.
enum Sink {
    Discard,
    Stdout,
    File {
        path: PathBuf,
        /// `None`: keep the existing file's mode (`"0000"`).
        mode: Option<u32>,
        /// The writer thread's queue, once started.
        queue: Mutex<Option<SyncSender<Job>>>,
    },
}

/// An enabled device.
pub struct Device {
    /// Its table row.
    pub entry: AuditEntry,
    salt: String,
    pub(super) hmac_accessor: bool,
    pub(super) log_raw: bool,
    pub(super) elide_list_responses: bool,
    prefix: String,
    sink: Sink,
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Result<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(Error::bad(format!(
            "strconv.ParseBool: parsing \"{v}\": invalid syntax"
        ))),
    }
}

impl Device {
    /// A device from its table row and salt; option errors are 400s.
    pub fn new(entry: AuditEntry, salt: String) -> Result<Device> {
        let o = &entry.options;
        let flag = |name: &str, default: bool| -> Result<bool> {
            o.get(name).map_or(Ok(default), |v| parse_bool(v))
        };
        let hmac_accessor = flag("hmac_accessor", true)?;
        let log_raw = flag("log_raw", false)?;
        let elide_list_responses = flag("elide_list_responses", false)?;
        match o.get("format").map(String::as_str) {
            None | Some("json") => {}
            Some("jsonx") => {
                return Err(Error::bad(
                    "jsonx formatting has been removed, consider switching to json by omitting \"format\" or setting it to \"json\"",
                ));
            }
            Some(other) => return Err(Error::bad(format!("unknown format type \"{other}\""))),
        }
        let prefix = o.get("prefix").cloned().unwrap_or_default();
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
                let bits = u32::from_str_radix(m, 8).map_err(|_| {
                    Error::bad(format!(
                        "strconv.ParseUint: parsing \"{m}\": invalid syntax"
                    ))
                })?;
                // Go's file type bits (directory, pipe, device, ...).
                if bits & 0xfff8_0000 != 0 {
                    return Err(Error::bad("file mode does not represent a regular file"));
                }
                // Never executable (HCSEC-2025-14); "0000" keeps the existing mode.
                (bits != 0).then_some(bits & 0o666)
            }
        };
        let sink = match file_path.to_ascii_lowercase().as_str() {
            "discard" => Sink::Discard,
            "stdout" => Sink::Stdout,
            _ => Sink::File {
                path: PathBuf::from(file_path),
                mode,
                queue: Mutex::new(None),
            },
        };
        Ok(Device {
            entry,
            salt,
            hmac_accessor,
            log_raw,
            elide_list_responses,
            prefix,
            sink,
        })
    }

    /// The device's salt (the HMAC key).
    pub(super) fn salt(&self) -> &str {
        &self.salt
    }

    /// `hmac-sha256:<hex>` of `value` under this device's salt (what `sys/audit-hash` returns).
    pub fn hash(&self, value: &str) -> String {
        // HMAC takes keys of any length: this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.salt.as_bytes()) else {
            return String::new();
        };
        mac.update(value.as_bytes());
        format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Opens the file and starts its writer (a no-op for `stdout`/`discard` and when already
    /// started): the enable-time sanity check.
    pub fn open(&self) -> Result<()> {
        let Sink::File { path, .. } = &self.sink else {
            return Ok(());
        };
        self.queue().map(|_| ()).map_err(|e| {
            Error::bad(format!(
                "sanity check failed; unable to open \"{}\" for writing: {e}",
                path.display()
            ))
        })
    }

    /// The file writer's queue, opening the file and starting the writer if needed.
    fn queue(&self) -> std::io::Result<SyncSender<Job>> {
        let Sink::File { path, mode, queue } = &self.sink else {
            return Err(std::io::Error::other("not a file device"));
        };
        let mut slot = queue
            .lock()
            .map_err(|_| std::io::Error::other("audit queue lock poisoned"))?;
        if let Some(tx) = slot.as_ref() {
            return Ok(tx.clone());
        }
        let file = open_file(path, *mode)?;
        let (tx, rx) = sync_channel::<Job>(QUEUE_DEPTH);
        let (path, mode) = (path.clone(), *mode);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer(path, mode, Some(file), &rx))?;
        *slot = Some(tx.clone());
        Ok(tx)
    }

    /// Writes a synthetic request entry, as Vault does at enable time, within the deadline.
    pub(super) fn probe(&self) -> std::io::Result<()> {
        let entry = serde_json::json!({
            "time": crate::clock::rfc3339_nanos(std::time::SystemTime::now()),
            "type": "request",
            "auth": {"token_type": "default"},
            "request": {"id": crate::ids::uuid_v4(), "operation": "update",
                        "namespace": {"id": "root"}, "path": "sys/audit/test"},
        });
        let (ack, acks) = sync_channel(1);
        self.submit(&entry, 0, &ack);
        match acks.recv_timeout(super::DEADLINE) {
            Ok((_, r)) => r,
            Err(_) => Err(std::io::Error::other("timed out writing the test message")),
        }
    }

    /// Hands one entry to the device; the outcome arrives on `ack` tagged `idx` (at once for
    /// `stdout`/`discard`, from the writer for files; a full queue fails at once).
    pub(super) fn submit(&self, entry: &serde_json::Value, idx: usize, ack: &Ack) {
        let mut line = self.prefix.clone().into_bytes();
        if let Err(e) = super::format::write_entry(&mut line, entry) {
            let _ = ack.try_send((idx, Err(e)));
            return;
        }
        line.push(b'\n');
        let result = match &self.sink {
            Sink::Discard => Ok(()),
            Sink::Stdout => std::io::stdout().lock().write_all(&line),
            Sink::File { .. } => match self.queue() {
                Err(e) => Err(e),
                Ok(tx) => match tx.try_send(Job {
                    line,
                    idx,
                    ack: ack.clone(),
                }) {
                    Ok(()) => return,
                    Err(TrySendError::Full(_)) => Err(std::io::Error::other("audit queue full")),
                    Err(TrySendError::Disconnected(_)) => {
                        Err(std::io::Error::other("audit writer stopped"))
                    }
                },
            },
        };
        let _ = ack.try_send((idx, result));
    }
}

/// Acknowledgements: (device index, outcome).
pub(super) type Ack = SyncSender<(usize, std::io::Result<()>)>;

/// Entries a file device may have queued before further ones fail at once.
const QUEUE_DEPTH: usize = 1024;

/// One line for the writer.
struct Job {
    line: Vec<u8>,
    idx: usize,
    ack: Ack,
}

/// A file device's writer thread: one `write` per line, reopen and retry once on failure (as
/// Vault does). Ends when the device is dropped.
fn writer(path: PathBuf, mode: Option<u32>, mut file: Option<File>, rx: &Receiver<Job>) {
    while let Ok(job) = rx.recv() {
        let mut result = match file.as_mut() {
            Some(f) => f.write_all(&job.line),
            None => Err(std::io::Error::other("not open")),
        };
        if result.is_err() {
            file = None;
            result = open_file(&path, mode).and_then(|mut f| {
                let r = f.write_all(&job.line);
                file = Some(f);
                r
            });
        }
        let _ = job.ack.try_send((job.idx, result));
    }
}

fn open_file(path: &std::path::Path, mode: Option<u32>) -> std::io::Result<File> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode.unwrap_or(0o600));
    }
    let f = opts.open(path)?;
    #[cfg(unix)]
    if let Some(m) = mode
        && path != std::path::Path::new("/dev/null")
        && f.metadata()?.is_file()
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(m))?;
    }
    Ok(f)
}
