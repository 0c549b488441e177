//! One audit device: its settings (parsed from the options), its salt and its sink.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

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
        file: Mutex<Option<File>>,
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
fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(Error::bad(format!(
            "unable to parse '{name}': strconv.ParseBool: parsing \"{v}\": invalid syntax"
        ))),
    }
}

impl Device {
    /// A device from its table row and salt; option errors are 400s.
    pub fn new(entry: AuditEntry, salt: String) -> Result<Device> {
        let o = &entry.options;
        let flag = |name: &str, default: bool| -> Result<bool> {
            o.get(name).map_or(Ok(default), |v| parse_bool(name, v))
        };
        let hmac_accessor = flag("hmac_accessor", true)?;
        let log_raw = flag("log_raw", false)?;
        let elide_list_responses = flag("elide_list_responses", false)?;
        match o.get("format").map(String::as_str) {
            None | Some("json") => {}
            Some("jsonx") => {
                return Err(Error::bad(
                    "format \"jsonx\" is not supported by Coffer; use \"json\"",
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
        let sink = match file_path.to_ascii_lowercase().as_str() {
            "discard" => Sink::Discard,
            "stdout" => Sink::Stdout,
            _ => {
                let mode = match o.get("mode") {
                    None => Some(0o600),
                    Some(m) => {
                        let bits = u32::from_str_radix(m, 8).map_err(|_| {
                            Error::bad(format!("unable to parse 'mode': invalid octal \"{m}\""))
                        })?;
                        if bits > 0o7777 {
                            return Err(Error::bad(format!(
                                "unable to parse 'mode': invalid octal \"{m}\""
                            )));
                        }
                        // Never executable (HCSEC-2025-14); "0000" keeps the existing mode.
                        (bits != 0).then_some(bits & 0o666)
                    }
                };
                Sink::File {
                    path: PathBuf::from(file_path),
                    mode,
                    file: Mutex::new(None),
                }
            }
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

    /// Opens the file (a no-op for `stdout`/`discard` and when already open): the enable-time
    /// sanity check.
    pub fn open(&self) -> Result<()> {
        let Sink::File { path, mode, file } = &self.sink else {
            return Ok(());
        };
        let mut slot = file
            .lock()
            .map_err(|_| Error::internal("audit file lock poisoned"))?;
        if slot.is_none() {
            *slot = Some(open_file(path, *mode).map_err(|e| {
                Error::bad(format!(
                    "sanity check failed; unable to open \"{}\" for writing: {e}",
                    path.display()
                ))
            })?);
        }
        Ok(())
    }

    /// Writes a synthetic request entry, as Vault does at enable time.
    pub(super) fn probe(&self) -> std::io::Result<()> {
        let entry = serde_json::json!({
            "time": crate::clock::rfc3339_nanos(std::time::SystemTime::now()),
            "type": "request",
            "auth": {},
            "request": {"id": crate::ids::uuid_v4(), "operation": "update", "path": "sys/audit/test"},
        });
        self.write_line(&entry)
    }

    /// Writes one entry as one line.
    pub(super) fn write(&self, entry: &serde_json::Value) -> Result<()> {
        self.write_line(entry)
            .map_err(|e| Error::internal(format!("audit write: {e}")))
    }

    fn write_line(&self, entry: &serde_json::Value) -> std::io::Result<()> {
        let mut line = self.prefix.clone().into_bytes();
        super::format::write_entry(&mut line, entry)?;
        line.push(b'\n');
        match &self.sink {
            Sink::Discard => Ok(()),
            Sink::Stdout => std::io::stdout().lock().write_all(&line),
            Sink::File { path, mode, file } => {
                let mut slot = file
                    .lock()
                    .map_err(|_| std::io::Error::other("audit file lock poisoned"))?;
                if let Some(f) = slot.as_mut()
                    && f.write_all(&line).is_ok()
                {
                    return Ok(());
                }
                // Not open yet, or the write failed: reopen and retry once (as Vault does).
                *slot = None;
                let mut f = open_file(path, *mode)?;
                f.write_all(&line)?;
                *slot = Some(f);
                Ok(())
            }
        }
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
