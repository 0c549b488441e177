//! `sys/host-info`: the host the server runs on, in the shape Vault reports it (its `hostutil`
//! package, i.e. gopsutil's field names and units): `cpu` (one entry per logical CPU),
//! `cpu_times` (seconds), `disk` (usage of each mounted block-device filesystem), `host`,
//! `memory` (bytes) and `timestamp`.
//!
//! Read from Linux's `/proc`, `/etc` and `statfs`. A part that cannot be read is left out and
//! named in a warning, as Vault does with its collection errors; on other systems every part
//! is a warning.

use serde_json::{Map, Value, json};

/// What was collected, and what could not be.
pub struct HostInfo {
    /// The response data.
    pub data: Map<String, Value>,
    /// One line per part that could not be read.
    pub warnings: Vec<String>,
}

/// Reads one part of the answer.
type Reader = fn() -> Result<Value, String>;

/// Reads everything (blocking file reads: call off the async workers).
pub fn collect() -> HostInfo {
    let mut data = Map::new();
    let mut warnings = Vec::new();
    let parts: [(&str, Reader); 5] = [
        ("cpu", cpu),
        ("cpu_times", cpu_times),
        ("disk", disk),
        ("host", host),
        ("memory", memory),
    ];
    for (name, read) in parts {
        match read() {
            Ok(v) => {
                data.insert(name.into(), v);
            }
            Err(e) => warnings.push(format!("error collecting {name} information: {e}")),
        }
    }
    data.insert(
        "timestamp".into(),
        crate::clock::rfc3339_nanos(std::time::SystemTime::now()).into(),
    );
    HostInfo { data, warnings }
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// `key : value` lines of one `/proc/cpuinfo` block or of `/proc/meminfo`.
fn fields(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
}

fn cpu() -> Result<Value, String> {
    let text = read("/proc/cpuinfo")?;
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| b.contains("processor")) {
        let mut c = json!({
            "cpu": 0, "vendorId": "", "family": "", "model": "", "stepping": 0,
            "physicalId": "", "coreId": "", "cores": 1, "modelName": "", "mhz": 0.0,
            "cacheSize": 0, "flags": [], "microcode": "",
        });
        for (k, v) in fields(block) {
            let (key, value) = match k {
                "processor" => ("cpu", json!(v.parse::<i64>().unwrap_or(0))),
                "vendor_id" => ("vendorId", json!(v)),
                "cpu family" => ("family", json!(v)),
                "model" => ("model", json!(v)),
                "stepping" => ("stepping", json!(v.parse::<i64>().unwrap_or(0))),
                "physical id" => ("physicalId", json!(v)),
                "core id" => ("coreId", json!(v)),
                "model name" => ("modelName", json!(v)),
                "cpu MHz" => ("mhz", json!(v.parse::<f64>().unwrap_or(0.0))),
                "cache size" => (
                    "cacheSize",
                    json!(v.trim_end_matches("KB").trim().parse::<i64>().unwrap_or(0)),
                ),
                "flags" => ("flags", json!(v.split_whitespace().collect::<Vec<_>>())),
                "microcode" => ("microcode", json!(v)),
                _ => continue,
            };
            if let Some(slot) = c.get_mut(key) {
                *slot = value;
            }
        }
        out.push(c);
    }
    if out.is_empty() {
        return Err("no processor in /proc/cpuinfo".into());
    }
    Ok(Value::Array(out))
}

/// Clock ticks per second of `/proc/stat` and `/proc/<pid>/stat` (`USER_HZ`: 100 on Linux).
pub(super) const TICKS: f64 = 100.0;

fn cpu_times() -> Result<Value, String> {
    let text = read("/proc/stat")?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next().filter(|n| {
            n.strip_prefix("cpu")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        }) else {
            continue;
        };
        let t: Vec<f64> = words
            .map(|w| w.parse::<f64>().unwrap_or(0.0) / TICKS)
            .collect();
        let at = |i: usize| t.get(i).copied().unwrap_or(0.0);
        out.push(json!({
            "cpu": name, "user": at(0), "system": at(2), "idle": at(3), "nice": at(1),
            "iowait": at(4), "irq": at(5), "softirq": at(6), "steal": at(7), "guest": at(8),
            "guestNice": at(9),
        }));
    }
    if out.is_empty() {
        return Err("no cpu line in /proc/stat".into());
    }
    Ok(Value::Array(out))
}

/// gopsutil's name for a filesystem's `statfs` magic number.
fn fs_name(magic: u64, mounted_as: &str) -> String {
    match magic {
        0xEF53 => "ext2/ext3",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x6969 => "nfs",
        0x7371_7368 => "squashfs",
        0x794C_7630 => "overlayfs",
        0x4d44 => "msdos",
        _ => mounted_as,
    }
    .to_string()
}

fn disk() -> Result<Value, String> {
    let mounts = read("/proc/mounts")?;
    // Filesystems that need a device (not marked `nodev` in /proc/filesystems).
    let filesystems = read("/proc/filesystems")?;
    let physical: Vec<&str> = filesystems
        .lines()
        .filter(|l| !l.starts_with("nodev"))
        .map(str::trim)
        .collect();
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in mounts.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (Some(point), Some(kind)) = (w.get(1), w.get(2)) else {
            continue;
        };
        if !physical.contains(kind) || !seen.insert(point.to_string()) {
            continue;
        }
        // /proc/mounts escapes spaces and the like as octal.
        let point = point.replace("\\040", " ").replace("\\011", "\t");
        let Ok(s) = rustix::fs::statfs(point.as_str()) else {
            continue;
        };
        let frsize = u64::try_from(s.f_frsize).unwrap_or(0);
        let blocks = s.f_blocks;
        let bfree = s.f_bfree;
        let bavail = s.f_bavail;
        let files = s.f_files;
        let ffree = s.f_ffree;
        let (total, free) = (blocks * frsize, bavail * frsize);
        let used = blocks.saturating_sub(bfree) * frsize;
        let inodes_used = files.saturating_sub(ffree);
        let percent = |part: u64, whole: u64| {
            if whole == 0 {
                0.0
            } else {
                part as f64 / whole as f64 * 100.0
            }
        };
        out.push(json!({
            "path": point,
            "fstype": fs_name(u64::try_from(s.f_type).unwrap_or(0), kind),
            "total": total, "free": free, "used": used,
            "usedPercent": percent(used, used + free),
            "inodesTotal": files, "inodesUsed": inodes_used, "inodesFree": ffree,
            "inodesUsedPercent": percent(inodes_used, files),
        }));
    }
    Ok(Value::Array(out))
}

/// `KEY=value` lines of os-release, unquoted.
fn os_release() -> std::collections::HashMap<String, String> {
    let text = read("/etc/os-release")
        .or_else(|_| read("/usr/lib/os-release"))
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// A 32-hex-digit id in UUID form (anything else as given, lower-cased).
pub(super) fn as_uuid(hex: &str) -> String {
    let h = hex.trim().to_ascii_lowercase();
    if h.len() != 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return h;
    }
    let part = |r: std::ops::Range<usize>| h.get(r).unwrap_or_default().to_string();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

fn host() -> Result<Value, String> {
    let hostname = read("/proc/sys/kernel/hostname")?.trim().to_string();
    let uptime = read("/proc/uptime")?
        .split_whitespace()
        .next()
        .and_then(|u| u.parse::<f64>().ok())
        .map_or(0, |u| u as u64);
    let boot = read("/proc/stat")?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|b| b.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let procs = std::fs::read_dir("/proc")
        .map_err(|e| format!("/proc: {e}"))?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .count();
    let os = os_release();
    let id = os.get("ID").cloned().unwrap_or_default();
    let family = match id.as_str() {
        "debian" | "ubuntu" | "linuxmint" | "raspbian" => "debian",
        "rhel" | "centos" | "rocky" | "almalinux" | "oracle" | "amzn" => "rhel",
        "fedora" => "fedora",
        "opensuse" | "opensuse-leap" | "sles" | "suse" => "suse",
        "alpine" => "alpine",
        "arch" | "manjaro" => "arch",
        other => other,
    }
    .to_string();
    let version = if id == "debian" {
        read("/etc/debian_version")
            .map(|v| v.trim().to_string())
            .ok()
    } else {
        None
    }
    .or_else(|| os.get("VERSION_ID").cloned())
    .unwrap_or_default();
    let (virt, role) = if std::path::Path::new("/.dockerenv").exists() {
        ("docker", "guest")
    } else {
        ("", "")
    };
    let host_id = read("/sys/class/dmi/id/product_uuid")
        .or_else(|_| read("/etc/machine-id"))
        .or_else(|_| read("/proc/sys/kernel/random/boot_id"))
        .map(|s| as_uuid(&s))
        .unwrap_or_default();
    Ok(json!({
        "hostname": hostname,
        "uptime": uptime,
        "bootTime": boot,
        "procs": procs,
        "os": std::env::consts::OS,
        "platform": id,
        "platformFamily": family,
        "platformVersion": version,
        "kernelVersion": read("/proc/sys/kernel/osrelease")?.trim(),
        "kernelArch": std::env::consts::ARCH,
        "virtualizationSystem": virt,
        "virtualizationRole": role,
        "hostid": host_id,
    }))
}

fn memory() -> Result<Value, String> {
    let text = read("/proc/meminfo")?;
    let mut kb = std::collections::HashMap::new();
    for (k, v) in fields(&text) {
        let n = v
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        // Sizes are in kB; the HugePages_* lines are counts.
        let n = if v.ends_with("kB") { n * 1024 } else { n };
        kb.insert(k, n);
    }
    let get = |k: &str| kb.get(k).copied().unwrap_or(0);
    let total = get("MemTotal");
    let available = get("MemAvailable");
    let used = total.saturating_sub(available);
    let used_percent = if total == 0 {
        0.0
    } else {
        used as f64 / total as f64 * 100.0
    };
    Ok(json!({
        "total": total, "available": available, "used": used, "usedPercent": used_percent,
        "free": get("MemFree"), "active": get("Active"), "inactive": get("Inactive"),
        "wired": 0, "laundry": 0, "buffers": get("Buffers"),
        "cached": get("Cached") + get("SReclaimable"),
        "writeback": get("Writeback"), "dirty": get("Dirty"),
        "writebacktmp": get("WritebackTmp"), "shared": get("Shmem"), "slab": get("Slab"),
        "sreclaimable": get("SReclaimable"), "sunreclaim": get("SUnreclaim"),
        "pagetables": get("PageTables"), "swapcached": get("SwapCached"),
        "commitlimit": get("CommitLimit"), "committedas": get("Committed_AS"),
        "hightotal": get("HighTotal"), "highfree": get("HighFree"),
        "lowtotal": get("LowTotal"), "lowfree": get("LowFree"),
        "swaptotal": get("SwapTotal"), "swapfree": get("SwapFree"), "mapped": get("Mapped"),
        "vmalloctotal": get("VmallocTotal"), "vmallocused": get("VmallocUsed"),
        "vmallocchunk": get("VmallocChunk"), "hugepagestotal": get("HugePages_Total"),
        "hugepagesfree": get("HugePages_Free"), "hugepagesize": get("Hugepagesize"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_take_uuid_form() {
        assert_eq!(
            as_uuid("3D1219C7C4C5404AAA1F6D2A48ADFDA4\n"),
            "3d1219c7-c4c5-404a-aa1f-6d2a48adfda4"
        );
        assert_eq!(as_uuid("not-hex"), "not-hex");
    }
}
