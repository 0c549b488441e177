//! Where a device's lines go, and the writer thread each device owns: a bounded queue in front
//! of one blocking output (a file, stdout, a socket, syslog), so a stuck output blocks only its
//! own thread. The request path hands a line to the queue (never blocking) and awaits the
//! writer's acknowledgement with a deadline.
//!
//! Stream outputs (files, stdout, TCP, Unix streams) get the lines queued so far in one `write`
//! (batching under load); datagram outputs (UDP, Unix datagrams, syslog) one datagram per line.
//! A failed write reopens the output and is retried once, as Vault does. A reopen request
//! (SIGHUP) travels through the same queue, so every line lands whole in exactly one file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

/// Acknowledgements: (device index, outcome).
pub(super) type Ack = tokio::sync::mpsc::UnboundedSender<(usize, io::Result<()>)>;

/// Entries a device may have queued before further ones fail at once.
const QUEUE_DEPTH: usize = 4096;

/// Lines written in one `write` at most (stream outputs).
const BATCH_LINES: usize = 256;

/// One line for the writer.
pub(super) struct Job {
    pub(super) line: Vec<u8>,
    pub(super) idx: usize,
    pub(super) ack: Ack,
}

enum Msg {
    Line(Job),
    /// Close and reopen (a file device on SIGHUP).
    Reopen,
}

/// A blocking output.
pub(super) trait Output: Send {
    /// Writes `data` (whole lines) entirely.
    fn write(&mut self, data: &[u8]) -> io::Result<()>;
    /// Closes and reopens (reconnects).
    fn reopen(&mut self) -> io::Result<()>;
    /// Whether several lines may go in one write.
    fn stream(&self) -> bool {
        true
    }
    /// How often the writer thread calls [`Output::tick`], if at all.
    fn tick_every(&self) -> Option<Duration> {
        None
    }
    /// Periodic work of the writer thread (a file's delayed `fsync`), also run once when the
    /// writer stops and before a reopen.
    fn tick(&mut self) {}
}

/// The queue of a running writer thread; the thread ends when this is dropped.
pub(super) struct Writer {
    tx: SyncSender<Msg>,
    /// The device's path, for the failure counter.
    device: Arc<str>,
    /// A helper thread waits to queue a reopen ([`Writer::reopen`]).
    reopen_waiting: Arc<std::sync::atomic::AtomicBool>,
}

impl Writer {
    /// Starts the writer thread over an opened output.
    pub(super) fn start(output: Box<dyn Output>, device: &str) -> io::Result<Writer> {
        let device: Arc<str> = Arc::from(device);
        let (tx, rx) = sync_channel::<Msg>(QUEUE_DEPTH);
        // The writer hands each batch's acknowledgements to a task on the runtime, which
        // wakes the waiting requests from inside it: one cross-thread wake-up per batch
        // instead of one per line.
        let relay = tokio::runtime::Handle::try_current().ok().map(|rt| {
            let (relay, mut batches) = tokio::sync::mpsc::unbounded_channel::<Vec<Done>>();
            rt.spawn(async move {
                while let Some(batch) = batches.recv().await {
                    for (ack, idx, r) in batch {
                        let _ = ack.send((idx, r));
                    }
                }
            });
            relay
        });
        let name = device.clone();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || run(output, &rx, relay.as_ref(), &name))?;
        Ok(Writer {
            tx,
            device,
            reopen_waiting: Arc::default(),
        })
    }

    /// Queues a line; a full queue or a stopped writer fails at once (on `job.ack`).
    pub(super) fn submit(&self, job: Job) {
        let err = match self.tx.try_send(Msg::Line(job)) {
            Ok(()) => return,
            Err(TrySendError::Full(Msg::Line(j))) => (j, "audit queue full"),
            Err(TrySendError::Disconnected(Msg::Line(j))) => (j, "audit writer stopped"),
            Err(_) => return,
        };
        let (job, why) = err;
        super::count_device_failure(&self.device, "queue_full", 1);
        let _ = job.ack.send((job.idx, Err(io::Error::other(why))));
    }

    /// Asks the writer to reopen its output after the lines already queued. Never blocks: with
    /// the queue full (a stuck output) the request is handed to a helper thread that queues it
    /// when there is room, at most one per device, so one stuck device cannot hold up the
    /// reopening of the others or later signals.
    pub(super) fn reopen(&self) {
        use std::sync::atomic::Ordering;
        match self.tx.try_send(Msg::Reopen) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                if self.reopen_waiting.swap(true, Ordering::AcqRel) {
                    return;
                }
                let (tx, waiting) = (self.tx.clone(), self.reopen_waiting.clone());
                let spawned = std::thread::Builder::new()
                    .name("audit-reopen".into())
                    .spawn(move || {
                        let _ = tx.send(Msg::Reopen);
                        waiting.store(false, Ordering::Release);
                    });
                if spawned.is_err() {
                    self.reopen_waiting.store(false, Ordering::Release);
                }
            }
        }
    }
}

/// One acknowledgement to deliver.
type Done = (Ack, usize, io::Result<()>);

fn run(
    mut out: Box<dyn Output>,
    rx: &Receiver<Msg>,
    relay: Option<&tokio::sync::mpsc::UnboundedSender<Vec<Done>>>,
    device: &str,
) {
    let mut jobs: Vec<Job> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let every = out.tick_every();
    let mut next_tick = every.map(|e| std::time::Instant::now() + e);
    loop {
        let first = match next_tick {
            None => rx.recv().ok(),
            Some(at) => {
                let wait = at.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(msg) => Some(msg),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        if let (Some(at), Some(every)) = (next_tick, every)
            && std::time::Instant::now() >= at
        {
            out.tick();
            next_tick = Some(std::time::Instant::now() + every);
        }
        let Some(first) = first else {
            if next_tick.is_none() {
                break;
            }
            continue;
        };
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Reopen => {
                    // The output's `reopen` syncs what it had written first.
                    flush(out.as_mut(), &mut jobs, &mut buf, relay, device);
                    if let Err(e) = out.reopen() {
                        tracing::error!(error = %e, "cannot reopen an audit device");
                    }
                }
                Msg::Line(job) => {
                    jobs.push(job);
                    if !out.stream() || jobs.len() >= BATCH_LINES {
                        flush(out.as_mut(), &mut jobs, &mut buf, relay, device);
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        flush(out.as_mut(), &mut jobs, &mut buf, relay, device);
    }
    // The device was disabled (or the server stops): what was written reaches the disk.
    out.tick();
}

/// Writes the pending lines in one write (reopen and retry once on failure) and acknowledges
/// each.
fn flush(
    out: &mut dyn Output,
    jobs: &mut Vec<Job>,
    buf: &mut Vec<u8>,
    relay: Option<&tokio::sync::mpsc::UnboundedSender<Vec<Done>>>,
    device: &str,
) {
    if jobs.is_empty() {
        return;
    }
    buf.clear();
    for j in jobs.iter() {
        buf.extend_from_slice(&j.line);
    }
    let result = out
        .write(buf)
        .or_else(|_| out.reopen().and_then(|()| out.write(buf)));
    if result.is_err() {
        super::count_device_failure(device, "error", jobs.len());
    }
    let done: Vec<Done> = jobs
        .drain(..)
        .map(|j| {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            (j.ack, j.idx, r)
        })
        .collect();
    let done = match relay {
        Some(relay) => match relay.send(done) {
            Ok(()) => return,
            Err(tokio::sync::mpsc::error::SendError(done)) => done,
        },
        None => done,
    };
    for (ack, idx, r) in done {
        let _ = ack.send((idx, r));
    }
}

/// Whether some request is writing a file inline right now (at most one in the process: a
/// write that hangs can hold at most one runtime worker, so the server never freezes).
static INLINE_BUSY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A write slower than this sends the file's next entries through its writer thread until a
/// write is fast again.
const SLOW_WRITE: Duration = Duration::from_millis(20);

/// Rounds of backlog an inline writer writes before it hands the rest to the writer thread
/// (its own request is waiting meanwhile).
const INLINE_ROUNDS: usize = 8;

/// A request's acknowledgement channel, made on first use: an entry written inline is
/// answered at once and needs none.
#[derive(Default)]
pub(super) struct AckChannel(Option<(Ack, Acks)>);

/// The receiving end of [`Ack`].
type Acks = tokio::sync::mpsc::UnboundedReceiver<(usize, io::Result<()>)>;

impl AckChannel {
    /// The sender, made now if needed.
    pub(super) fn sender(&mut self) -> &Ack {
        &self
            .0
            .get_or_insert_with(tokio::sync::mpsc::unbounded_channel)
            .0
    }

    /// The next acknowledgement (`None` at once when no entry was ever queued).
    pub(super) async fn recv(&mut self) -> Option<(usize, io::Result<()>)> {
        match self.0.as_mut() {
            Some((_, rx)) => rx.recv().await,
            None => None,
        }
    }
}

/// Lines handed to the request currently writing a file inline (flat combining): it writes
/// them in one `write` after its own and acknowledges each.
#[derive(Default)]
struct Backlog {
    /// A request is writing this file inline: lines appended now are written by it.
    active: bool,
    lines: Vec<u8>,
    /// (acknowledgement, device index, line length), in `lines` order.
    waiters: Vec<(Ack, usize, usize)>,
}

/// What became of a line offered to [`SharedFile::try_write_inline`].
pub(super) enum Inline {
    /// Written by the caller itself.
    Written,
    /// Handed to the request writing the file now; the outcome arrives on the acknowledgement.
    Queued,
    /// Not taken: use the writer thread.
    Declined,
}

/// A regular file shared by its writer thread and the inline path. A request finding the file
/// idle and healthy appends its line itself (one `write`, no thread hand-off); a request
/// arriving while another writes it inline leaves its line in the backlog, which the writing
/// request appends right after its own (so concurrent requests share one `write` and nobody
/// waits for a thread to wake). Otherwise lines go through the writer thread's queue. All
/// writes take the same lock, so lines stay whole and in one file across a reopen.
pub(super) struct SharedFile {
    out: std::sync::Mutex<FileOut>,
    backlog: std::sync::Mutex<Backlog>,
    slow: std::sync::atomic::AtomicBool,
    /// Inline writes allowed: the runtime that opened the file has at least two workers (with
    /// one, a hanging write would stop everything).
    inline: bool,
    /// A write that took longer sends the next lines through the writer thread
    /// ([`SLOW_WRITE`]).
    slow_after: Duration,
}

fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SharedFile {
    pub(super) fn new(out: FileOut) -> Arc<SharedFile> {
        Self::with_slow_after(out, SLOW_WRITE)
    }

    /// [`SharedFile::new`] with another threshold for a slow write.
    fn with_slow_after(out: FileOut, slow_after: Duration) -> Arc<SharedFile> {
        let inline = out
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .is_some_and(|m| m.is_file())
            && tokio::runtime::Handle::try_current().is_ok_and(|h| h.metrics().num_workers() >= 2);
        Arc::new(SharedFile {
            out: std::sync::Mutex::new(out),
            backlog: std::sync::Mutex::new(Backlog::default()),
            slow: std::sync::atomic::AtomicBool::new(false),
            inline,
            slow_after,
        })
    }

    /// Appends `line` on the caller's thread when that cannot stall the server (the file is a
    /// regular file, its last write was fast, no other inline write is in progress), or hands
    /// it to the request doing so now. Lines the inline writer cannot write go to `writer`.
    pub(super) fn try_write_inline(
        &self,
        line: &[u8],
        idx: usize,
        ack: &mut AckChannel,
        writer: &Writer,
    ) -> Inline {
        use std::sync::atomic::Ordering;
        if !self.inline || self.slow.load(Ordering::Relaxed) {
            return Inline::Declined;
        }
        {
            let mut b = locked(&self.backlog);
            if b.active {
                if b.waiters.len() >= QUEUE_DEPTH {
                    return Inline::Declined;
                }
                b.lines.extend_from_slice(line);
                b.waiters.push((ack.sender().clone(), idx, line.len()));
                return Inline::Queued;
            }
            if INLINE_BUSY
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                return Inline::Declined;
            }
            b.active = true;
        }
        let own = self.timed(&mut locked(&self.out), line);
        let mut spare = Vec::new();
        let mut round = 0;
        loop {
            let mut b = locked(&self.backlog);
            if b.waiters.is_empty() || round >= INLINE_ROUNDS || self.slow.load(Ordering::Relaxed) {
                // Released under the backlog lock: a line queued before this point is in
                // `rest`, a later one sees `active == false`.
                let rest = (std::mem::take(&mut b.lines), std::mem::take(&mut b.waiters));
                b.active = false;
                INLINE_BUSY.store(false, Ordering::Release);
                drop(b);
                hand_over(writer, &rest.0, rest.1);
                break;
            }
            spare.clear();
            std::mem::swap(&mut b.lines, &mut spare);
            let waiters = std::mem::take(&mut b.waiters);
            drop(b);
            round += 1;
            if self.timed(&mut locked(&self.out), &spare).is_ok() {
                for (a, i, _) in waiters {
                    let _ = a.send((i, Ok(())));
                }
            } else {
                hand_over(writer, &spare, waiters);
            }
        }
        match own {
            Ok(()) => Inline::Written,
            // The writer thread retries it (after a reopen).
            Err(_) => Inline::Declined,
        }
    }

    /// One write (reopen and retry once on failure), noting whether it was slow.
    fn timed(&self, out: &mut FileOut, data: &[u8]) -> io::Result<()> {
        let started = std::time::Instant::now();
        let r = out
            .write(data)
            .or_else(|_| out.reopen().and_then(|()| out.write(data)));
        self.slow.store(
            started.elapsed() > self.slow_after,
            std::sync::atomic::Ordering::Relaxed,
        );
        r
    }
}

/// Queues backlog lines (concatenated in `lines`) on the writer thread, one job per line.
fn hand_over(writer: &Writer, lines: &[u8], waiters: Vec<(Ack, usize, usize)>) {
    let mut at = 0;
    for (ack, idx, len) in waiters {
        let line = lines.get(at..at + len).unwrap_or_default().to_vec();
        at += len;
        writer.submit(Job { line, idx, ack });
    }
}

/// The writer thread's side of a [`SharedFile`].
pub(super) struct SharedOut(pub(super) Arc<SharedFile>);

impl Output for SharedOut {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.timed(&mut locked(&self.0.out), data)
    }

    fn reopen(&mut self) -> io::Result<()> {
        locked(&self.0.out).reopen()
    }

    fn tick_every(&self) -> Option<Duration> {
        locked(&self.0.out).tick_every()
    }

    fn tick(&mut self) {
        locked(&self.0.out).tick();
    }
}

/// When a file device's writes reach the disk (`fsync_interval`, Coffer's option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fsync {
    /// Left to the kernel, as Vault does: a process crash keeps every line, a power loss may not.
    Never,
    /// `fdatasync` after every write, before the entries are acknowledged (`"0s"`).
    EveryWrite,
    /// `fdatasync` by the writer thread at most this long after a write.
    Within(Duration),
}

/// When a file device starts a new file by itself (Coffer's options `max_bytes`, `max_age`,
/// `max_files`): between two writes the file is renamed to `<file_path>.<UTC time>` and a new
/// one is opened, so every line lands whole in exactly one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Rotate {
    /// A write that would make the file larger than this goes to a new file.
    pub(super) max_bytes: Option<u64>,
    /// A write to a file opened this long ago goes to a new file.
    pub(super) max_age: Option<Duration>,
    /// Rotated files kept, the oldest removed first; `None` keeps every one.
    pub(super) max_files: Option<usize>,
}

/// How a `file` device writes its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileOptions {
    /// `None`: keep the existing file's mode (`"0000"`).
    pub(super) mode: Option<u32>,
    pub(super) fsync: Fsync,
    pub(super) rotate: Rotate,
}

impl FileOptions {
    /// Vault's defaults: mode 0600, no sync, no rotation.
    #[cfg(test)]
    pub(super) fn plain() -> FileOptions {
        FileOptions {
            mode: None,
            fsync: Fsync::Never,
            rotate: Rotate::default(),
        }
    }
}

/// A `file` device's file.
pub(super) struct FileOut {
    path: PathBuf,
    options: FileOptions,
    file: Option<File>,
    /// Written since the last `fdatasync` (`Fsync::Within`).
    dirty: bool,
    /// `fdatasync` calls that succeeded (tests read it).
    syncs: u64,
    /// Size of the open file (for `max_bytes`).
    size: u64,
    /// When the open file was opened (for `max_age`).
    opened: std::time::Instant,
}

impl FileOut {
    /// Opens (creating) the file: the enable-time sanity check.
    pub(super) fn open(path: PathBuf, mut options: FileOptions) -> io::Result<FileOut> {
        let file = open_file(&path, options.mode)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            // `/dev/null`, a FIFO, a terminal: never renamed (rotation) nor synced (EINVAL).
            options.rotate = Rotate::default();
            options.fsync = Fsync::Never;
        }
        let size = meta.len();
        Ok(FileOut {
            path,
            options,
            file: Some(file),
            dirty: false,
            syncs: 0,
            size,
            opened: std::time::Instant::now(),
        })
    }

    /// Whether `len` more bytes go to a new file.
    fn rotation_due(&self, len: usize) -> bool {
        let r = &self.options.rotate;
        self.size > 0
            && (r.max_bytes.is_some_and(|max| self.size + len as u64 > max)
                || r.max_age.is_some_and(|age| self.opened.elapsed() >= age))
    }

    /// Renames the file to `<file_path>.<UTC time>`, opens a new one and removes rotated files
    /// beyond `max_files`. A rename that fails is logged and writing goes on in the same file
    /// (an audit log that cannot rotate must not stop the server); the next attempt comes a
    /// whole `max_bytes` / `max_age` later.
    fn rotate(&mut self) -> io::Result<()> {
        self.tick();
        // Never onto an existing name (a rename would replace it): the next nanosecond.
        let mut at = std::time::SystemTime::now();
        let mut rotated = rotated_name(&self.path, at);
        while rotated.exists() {
            at += Duration::from_nanos(1);
            rotated = rotated_name(&self.path, at);
        }
        if let Err(e) = std::fs::rename(&self.path, &rotated) {
            tracing::error!(audit.file = %self.path.display(), error = %e, "cannot rotate the audit file; writing on");
            self.size = 0;
            self.opened = std::time::Instant::now();
            return Ok(());
        }
        self.file = None;
        let file = open_file(&self.path, self.options.mode)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        self.opened = std::time::Instant::now();
        if let Some(keep) = self.options.rotate.max_files {
            prune_rotated(&self.path, keep);
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        match self.file.as_ref() {
            Some(f) => f.sync_data()?,
            None => return Err(io::Error::other("not open")),
        }
        self.dirty = false;
        self.syncs += 1;
        Ok(())
    }
}

impl Output for FileOut {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.rotation_due(data.len()) {
            self.rotate()?;
        }
        match self.file.as_mut() {
            Some(f) => append_whole(f, data, &self.path)?,
            None => return Err(io::Error::other("not open")),
        }
        self.size += data.len() as u64;
        match self.options.fsync {
            Fsync::Never => Ok(()),
            Fsync::EveryWrite => self.sync(),
            Fsync::Within(_) => {
                self.dirty = true;
                Ok(())
            }
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        // What reached the old file reaches its disk before the file is let go.
        self.tick();
        self.file = None;
        let file = open_file(&self.path, self.options.mode)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        self.opened = std::time::Instant::now();
        Ok(())
    }

    fn tick_every(&self) -> Option<Duration> {
        match self.options.fsync {
            Fsync::Within(d) => Some(d),
            Fsync::Never | Fsync::EveryWrite => None,
        }
    }

    fn tick(&mut self) {
        if self.dirty
            && let Err(e) = self.sync()
        {
            tracing::error!(audit.file = %self.path.display(), error = %e, "audit file fsync failed");
        }
    }
}

/// `<path>.<UTC time>` with whole nanoseconds, colons left out (`audit.log.2026-12-02T125912.000000001Z`):
/// names that sort in time order.
fn rotated_name(path: &Path, now: std::time::SystemTime) -> PathBuf {
    let nanos = crate::clock::unix_nanos(now);
    let secs = crate::clock::from_unix_nanos(nanos.div_euclid(1_000_000_000) * 1_000_000_000);
    let stamp = crate::clock::rfc3339_nanos(secs).replace(':', "");
    let stamp = stamp.trim_end_matches('Z');
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{stamp}.{:09}Z", nanos.rem_euclid(1_000_000_000)));
    PathBuf::from(name)
}

/// Whether `name` is `<file>.<stamp>` as [`rotated_name`] writes it.
fn is_rotated(file: &str, name: &str) -> bool {
    let Some(stamp) = name.strip_prefix(file).and_then(|r| r.strip_prefix('.')) else {
        return false;
    };
    // 2026-12-02T125912.000000001Z
    let shape = b"dddd-dd-ddTdddddd.dddddddddZ";
    stamp.len() == shape.len()
        && stamp.bytes().zip(shape.iter()).all(|(c, s)| match s {
            b'd' => c.is_ascii_digit(),
            other => c == *other,
        })
}

/// Removes the oldest rotated files of `path` beyond `keep` (only names [`rotated_name`] makes).
fn prune_rotated(path: &Path, keep: usize) {
    let (Some(dir), Some(file)) = (path.parent(), path.file_name().and_then(|f| f.to_str())) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut rotated: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_rotated(file, n))
        .collect();
    rotated.sort();
    let excess = rotated.len().saturating_sub(keep);
    for old in rotated.iter().take(excess) {
        if let Err(e) = std::fs::remove_file(dir.join(old)) {
            tracing::warn!(audit.file = %old, error = %e, "cannot remove an old rotated audit file");
        }
    }
}

/// Opens for appending, creating the file (and its missing directories) with `mode`, and sets
/// `mode` on an existing regular file (`None`: keep its mode).
fn open_file(path: &Path, mode: Option<u32>) -> io::Result<File> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(dir_mode(mode.unwrap_or(0o600)))
            .create(dir)?;
    }
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode.unwrap_or(0o600));
    }
    let f = opts.open(path)?;
    if let Some(m) = mode
        && path != Path::new("/dev/null")
        && f.metadata()?.is_file()
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(m))?;
    }
    Ok(f)
}

/// The mode of a directory made for a log file of `mode`: `rwx` for the owner (the server
/// writes there), and `r-x` for group and others where the file lets them read or write it
/// (`0600` → `0700`, `0640` → `0750`, `0660` → `0750`: never write, so nobody else can swap
/// the log for a link). Vault creates them with the file's own mode, so a non-root server cannot
/// enter the directory it just made (`0600`) and the device fails to open.
fn dir_mode(mode: u32) -> u32 {
    let mut out = 0o700;
    for class in [0o070, 0o007] {
        if mode & class & 0o666 != 0 {
            out |= class & 0o555;
        }
    }
    out
}

/// Appends `data` to `file`, or nothing of it: when a write fails part way (the disk filled up,
/// a file size limit was reached), the part already appended is cut off again, so that the
/// retry (or the next entry) does not glue a whole line onto a torn one. Only the tail that
/// this call appended is cut, measured from the file's end at the failure (a file that is not
/// a regular file cannot be cut; what reached it stays).
fn append_whole(file: &mut File, data: &[u8], path: &Path) -> io::Result<()> {
    let mut written = 0;
    while let Some(rest) = data.get(written..).filter(|rest| !rest.is_empty()) {
        match file.write(rest) {
            Ok(0) => {
                return Err(take_back(
                    file,
                    written,
                    path,
                    io::ErrorKind::WriteZero.into(),
                ));
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(take_back(file, written, path, e)),
        }
    }
    Ok(())
}

/// Cuts the `written` bytes a failed append left at the end of `file`; returns the write's
/// error.
fn take_back(file: &File, written: usize, path: &Path, error: io::Error) -> io::Error {
    if written == 0 {
        return error;
    }
    let cut = file.metadata().and_then(|meta| {
        let len = meta.len();
        match len.checked_sub(written as u64) {
            Some(keep) if meta.is_file() => file.set_len(keep),
            _ => Err(io::Error::other("not a regular file")),
        }
    });
    if let Err(e) = cut {
        tracing::error!(audit.file = %path.display(), error = %e, bytes = written,
            "an audit entry was written in part and could not be cut off");
    }
    error
}

/// `file_path = "stdout"`.
pub(super) struct StdoutOut;

impl Output for StdoutOut {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(data)?;
        out.flush()
    }

    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The socket kinds of a `socket` device (Go's network names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SocketType {
    Tcp,
    Udp,
    Unix,
    Unixgram,
}

impl SocketType {
    /// Go's names: `tcp`, `tcp4`, `tcp6`, `udp`, `udp4`, `udp6`, `unix`, `unixgram`.
    pub(super) fn parse(s: &str) -> Option<SocketType> {
        match s {
            "tcp" | "tcp4" | "tcp6" => Some(SocketType::Tcp),
            "udp" | "udp4" | "udp6" => Some(SocketType::Udp),
            "unix" => Some(SocketType::Unix),
            "unixgram" => Some(SocketType::Unixgram),
            _ => None,
        }
    }
}

enum Conn {
    Tcp(TcpStream),
    Udp(UdpSocket),
    Unix(UnixStream),
    Unixgram(UnixDatagram),
}

/// A `socket` device's connection; `write_timeout` bounds the dial and each write.
pub(super) struct SocketOut {
    kind: SocketType,
    address: String,
    timeout: Duration,
    conn: Option<Conn>,
}

impl SocketOut {
    /// Dials `address`.
    pub(super) fn open(kind: SocketType, address: String, timeout: Duration) -> io::Result<Self> {
        let mut s = SocketOut {
            kind,
            address,
            timeout,
            conn: None,
        };
        s.conn = Some(s.dial()?);
        Ok(s)
    }

    fn dial(&self) -> io::Result<Conn> {
        let t = Some(self.timeout);
        Ok(match self.kind {
            SocketType::Tcp => {
                let mut last = io::Error::other(format!("no address for {}", self.address));
                let mut conn = None;
                for addr in self.address.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&addr, self.timeout) {
                        Ok(c) => {
                            conn = Some(c);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                let c = conn.ok_or(last)?;
                c.set_write_timeout(t)?;
                let _ = c.set_nodelay(true);
                Conn::Tcp(c)
            }
            SocketType::Udp => {
                let target =
                    self.address.to_socket_addrs()?.next().ok_or_else(|| {
                        io::Error::other(format!("no address for {}", self.address))
                    })?;
                let local = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(local)?;
                s.connect(target)?;
                s.set_write_timeout(t)?;
                Conn::Udp(s)
            }
            SocketType::Unix => {
                let c = UnixStream::connect(&self.address)?;
                c.set_write_timeout(t)?;
                Conn::Unix(c)
            }
            SocketType::Unixgram => {
                let s = UnixDatagram::unbound()?;
                s.connect(&self.address)?;
                s.set_write_timeout(t)?;
                Conn::Unixgram(s)
            }
        })
    }
}

impl SocketOut {
    /// Whether the peer of a stream connection has closed it (so a write would vanish into a
    /// dead connection instead of failing): a non-blocking peek that sees end-of-file.
    fn closed_by_peer(&self) -> bool {
        fn eof<S>(
            s: &S,
            nb: impl Fn(&S, bool) -> io::Result<()>,
            peek: impl Fn(&S) -> io::Result<usize>,
        ) -> bool {
            if nb(s, true).is_err() {
                return false;
            }
            let r = peek(s);
            let _ = nb(s, false);
            match r {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != io::ErrorKind::WouldBlock,
            }
        }
        match &self.conn {
            Some(Conn::Tcp(c)) => eof(c, TcpStream::set_nonblocking, |c| c.peek(&mut [0u8; 1])),
            Some(Conn::Unix(c)) => eof(c, UnixStream::set_nonblocking, |c| {
                use std::io::Read;
                // A Unix stream has no peek in std: a closed peer reads as EOF, and the audit
                // peer is never expected to send anything.
                (&*c).read(&mut [0u8; 1])
            }),
            _ => false,
        }
    }
}

impl Output for SocketOut {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.closed_by_peer() {
            self.reopen()?;
        }
        match self.conn.as_mut() {
            None => Err(io::Error::other("not connected")),
            Some(Conn::Tcp(c)) => c.write_all(data),
            Some(Conn::Unix(c)) => c.write_all(data),
            Some(Conn::Udp(s)) => s.send(data).map(|_| ()),
            Some(Conn::Unixgram(s)) => s.send(data).map(|_| ()),
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.conn = None;
        self.conn = Some(self.dial()?);
        Ok(())
    }

    fn stream(&self) -> bool {
        matches!(self.kind, SocketType::Tcp | SocketType::Unix)
    }
}

/// The local syslog sockets Go's `log/syslog` tries, in order.
const SYSLOG_PATHS: &[&str] = &["/dev/log", "/var/run/syslog", "/var/run/log"];

/// Overrides the local syslog socket path (a test and operations hook).
pub const SYSLOG_SOCKET_ENV: &str = "COFFER_SYSLOG_SOCKET";

/// Syslog facility codes by Vault's (go-syslog's) names.
pub(super) fn facility_code(name: &str) -> Option<u8> {
    let code = match name.to_ascii_uppercase().as_str() {
        "KERN" => 0,
        "USER" => 1,
        "MAIL" => 2,
        "DAEMON" => 3,
        "AUTH" => 4,
        "SYSLOG" => 5,
        "LPR" => 6,
        "NEWS" => 7,
        "UUCP" => 8,
        "CRON" => 9,
        "AUTHPRIV" => 10,
        "FTP" => 11,
        "LOCAL0" => 16,
        "LOCAL1" => 17,
        "LOCAL2" => 18,
        "LOCAL3" => 19,
        "LOCAL4" => 20,
        "LOCAL5" => 21,
        "LOCAL6" => 22,
        "LOCAL7" => 23,
        _ => return None,
    };
    Some(code)
}

enum SyslogConn {
    Dgram(UnixDatagram),
    Stream(UnixStream),
}

/// A `syslog` device: one message per entry to the local syslog socket, in Go's `log/syslog`
/// local format `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG` with priority INFO.
pub(super) struct SyslogOut {
    priority: u8,
    tag: String,
    conn: Option<SyslogConn>,
}

impl SyslogOut {
    /// Connects to the local syslog socket.
    pub(super) fn open(facility: u8, tag: String) -> io::Result<SyslogOut> {
        let mut s = SyslogOut {
            priority: facility * 8 + 6,
            tag,
            conn: None,
        };
        s.conn = Some(Self::dial()?);
        Ok(s)
    }

    fn dial() -> io::Result<SyslogConn> {
        let paths: Vec<String> = match std::env::var(SYSLOG_SOCKET_ENV) {
            Ok(p) if !p.is_empty() => vec![p],
            _ => SYSLOG_PATHS.iter().map(|p| (*p).to_string()).collect(),
        };
        for p in &paths {
            if let Ok(s) = UnixDatagram::unbound()
                && s.connect(p).is_ok()
            {
                let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                return Ok(SyslogConn::Dgram(s));
            }
            if let Ok(s) = UnixStream::connect(p) {
                let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                return Ok(SyslogConn::Stream(s));
            }
        }
        Err(io::Error::other("Unix syslog delivery error"))
    }
}

impl Output for SyslogOut {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let stamp = syslog_stamp(std::time::SystemTime::now());
        let mut msg = format!(
            "<{}>{stamp} {}[{}]: ",
            self.priority,
            self.tag,
            std::process::id()
        )
        .into_bytes();
        msg.extend_from_slice(data);
        if !msg.ends_with(b"\n") {
            msg.push(b'\n');
        }
        match self.conn.as_mut() {
            None => Err(io::Error::other("not connected")),
            Some(SyslogConn::Dgram(s)) => s.send(&msg).map(|_| ()),
            Some(SyslogConn::Stream(s)) => s.write_all(&msg),
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.conn = None;
        self.conn = Some(Self::dial()?);
        Ok(())
    }

    fn stream(&self) -> bool {
        false
    }
}

/// Go's `time.Stamp` (`Jan _2 15:04:05`), in UTC.
fn syslog_stamp(t: std::time::SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // 2026-12-02T04:40:00Z
    let s = humantime::format_rfc3339_seconds(t).to_string();
    let month = s
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or("Jan");
    let day = s.get(8..10).and_then(|d| d.parse::<u8>().ok()).unwrap_or(1);
    let clock = s.get(11..19).unwrap_or("00:00:00");
    format!("{month} {day:>2} {clock}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inline slot is process-wide: these tests take turns.
    static INLINE_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn missing_directories_are_made_searchable_by_whoever_may_use_the_file() {
        assert_eq!(dir_mode(0o600), 0o700);
        assert_eq!(dir_mode(0o640), 0o750);
        assert_eq!(dir_mode(0o604), 0o705);
        assert_eq!(dir_mode(0o660), 0o750);
        assert_eq!(dir_mode(0o440), 0o750);
        assert_eq!(dir_mode(0o200), 0o700);
        let base = temp_file("unused").with_file_name("made");
        let file = base.join("a/b/audit.log");
        open_file(&file, Some(0o640)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for dir in [base.join("a"), base.join("a/b")] {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            // The umask may take bits away, never add them.
            assert_eq!(mode & !0o750, 0, "{}: {mode:o}", dir.display());
            assert_eq!(mode & 0o700, 0o700, "{}: {mode:o}", dir.display());
        }
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    fn temp_file(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "coffer-sink-{}-{}",
            std::process::id(),
            crate::ids::uuid_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn open_shared(path: &Path) -> (Arc<SharedFile>, Arc<Writer>) {
        open_synced(path, Fsync::Never)
    }

    fn open_synced(path: &Path, fsync: Fsync) -> (Arc<SharedFile>, Arc<Writer>) {
        let options = FileOptions {
            fsync,
            ..FileOptions::plain()
        };
        // What these tests check does not depend on how fast the disk is: a write (an fsync
        // above all) slower than 20 ms on a loaded machine must not send lines to the writer
        // thread here (it did, as a CI flake of the fsync test).
        let shared = SharedFile::with_slow_after(
            FileOut::open(path.to_path_buf(), options).unwrap(),
            Duration::from_secs(600),
        );
        assert!(
            shared.inline,
            "a regular file on a 2-worker runtime is written inline"
        );
        let writer = Arc::new(Writer::start(Box::new(SharedOut(shared.clone())), "test/").unwrap());
        (shared, writer)
    }

    /// An output whose writes block until released; counts reopens.
    struct Stuck {
        release: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
        entered: Arc<std::sync::atomic::AtomicBool>,
        reopens: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Output for Stuck {
        fn write(&mut self, _data: &[u8]) -> io::Result<()> {
            self.entered
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let (m, cv) = &*self.release;
            let mut go = m.lock().unwrap();
            while !*go {
                go = cv.wait(go).unwrap();
            }
            Ok(())
        }

        fn reopen(&mut self) -> io::Result<()> {
            self.reopens
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn a_reopen_never_blocks_on_a_stuck_device_and_still_happens_once_it_moves() {
        use std::sync::atomic::Ordering::SeqCst;
        let release = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let entered = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reopens = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writer = Arc::new(
            Writer::start(
                Box::new(Stuck {
                    release: release.clone(),
                    entered: entered.clone(),
                    reopens: reopens.clone(),
                }),
                "stuck/",
            )
            .unwrap(),
        );
        let (ack, mut acks) = tokio::sync::mpsc::unbounded_channel();
        let job = |idx| Job {
            line: b"x\n".to_vec(),
            idx,
            ack: ack.clone(),
        };
        // The writer takes a line and blocks in its write.
        writer.submit(job(0));
        while !entered.load(SeqCst) {
            std::thread::yield_now();
        }
        // Then its queue fills: the first refusal means it is full (nothing drains it now).
        let mut refused = false;
        for idx in 1..=QUEUE_DEPTH + 1 {
            writer.submit(job(idx));
            if let Ok((_, r)) = acks.try_recv() {
                assert!(r.is_err());
                refused = true;
                break;
            }
        }
        assert!(refused, "the queue is full");
        // Three signals while it is stuck: each call returns (before, the first blocked the
        // signal task for as long as the device stayed stuck).
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let w = writer.clone();
        std::thread::spawn(move || {
            for _ in 0..3 {
                w.reopen();
            }
            let _ = done_tx.send(());
        });
        assert!(
            done_rx.recv_timeout(Duration::from_secs(30)).is_ok(),
            "reopen blocked on a stuck device"
        );
        assert_eq!(reopens.load(SeqCst), 0);
        // The device moves again: the queued reopen happens, once for the three signals that
        // found the queue full.
        *release.0.lock().unwrap() = true;
        release.1.notify_all();
        let mut n = 0;
        while reopens.load(SeqCst) == 0 && n < 30_000 {
            std::thread::sleep(Duration::from_millis(1));
            n += 1;
        }
        assert_eq!(reopens.load(SeqCst), 1);
    }

    #[test]
    fn a_line_offered_during_an_inline_write_is_appended_by_that_writer() {
        let _turn = INLINE_TESTS.lock().unwrap_or_else(|p| p.into_inner());
        let path = temp_file("audit.log");
        runtime().block_on(async {
            let (shared, writer) = open_shared(&path);
            // The file is busy: the first request becomes the inline writer and waits for it.
            let held = shared.out.lock().unwrap();
            let first = std::thread::spawn({
                let (shared, writer) = (shared.clone(), writer.clone());
                move || {
                    let mut acks = AckChannel::default();
                    matches!(
                        shared.try_write_inline(b"first\n", 0, &mut acks, &writer),
                        Inline::Written
                    )
                }
            });
            while !locked(&shared.backlog).active {
                std::thread::yield_now();
            }
            // A second request hands its line over instead of waking the writer thread.
            let mut acks = AckChannel::default();
            assert!(matches!(
                shared.try_write_inline(b"second\n", 1, &mut acks, &writer),
                Inline::Queued
            ));
            drop(held);
            assert!(first.join().unwrap(), "the first line was written inline");
            let (idx, result) = acks.recv().await.unwrap();
            assert_eq!(idx, 1);
            result.unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\nsecond\n");
            // Nobody writes now: the next line is written inline at once.
            assert!(matches!(
                shared.try_write_inline(b"third\n", 2, &mut AckChannel::default(), &writer),
                Inline::Written
            ));
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                "first\nsecond\nthird\n"
            );
        });
    }

    #[test]
    fn concurrent_lines_land_whole_and_exactly_once() {
        let _turn = INLINE_TESTS.lock().unwrap_or_else(|p| p.into_inner());
        let path = temp_file("audit.log");
        let (tasks, per_task) = (8usize, 400usize);
        let outcomes = runtime().block_on(async {
            let (shared, writer) = open_shared(&path);
            let mut handles = Vec::new();
            for t in 0..tasks {
                let (shared, writer) = (shared.clone(), writer.clone());
                handles.push(tokio::spawn(async move {
                    let mut counts = [0usize; 3];
                    for i in 0..per_task {
                        let line = format!("{t}-{i}-{}\n", "x".repeat(1000)).into_bytes();
                        let mut acks = AckChannel::default();
                        match shared.try_write_inline(&line, i, &mut acks, &writer) {
                            Inline::Written => counts[0] += 1,
                            Inline::Queued => counts[1] += 1,
                            Inline::Declined => {
                                counts[2] += 1;
                                let ack = acks.sender().clone();
                                writer.submit(Job { line, idx: i, ack });
                            }
                        }
                        if let Some((idx, result)) = acks.recv().await {
                            assert_eq!(idx, i);
                            result.unwrap();
                        }
                        if i % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    counts
                }));
            }
            let mut total = [0usize; 3];
            for h in handles {
                for (sum, n) in total.iter_mut().zip(h.await.unwrap()) {
                    *sum += n;
                }
            }
            total
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let mut seen = std::collections::HashSet::new();
        for line in text.lines() {
            let (id, pad) = line.rsplit_once('-').unwrap();
            assert_eq!(pad.len(), 1000, "a whole line");
            assert!(seen.insert(id.to_string()), "{id} written twice");
        }
        assert_eq!(seen.len(), tasks * per_task, "every line once");
        assert_eq!(outcomes.iter().sum::<usize>(), tasks * per_task);
        assert!(
            outcomes[0] > 0,
            "some lines were written inline: {outcomes:?}"
        );
    }

    #[test]
    fn syslog_stamp_is_go_time_stamp() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_796_186_096);
        assert_eq!(syslog_stamp(t), "Dec  2 04:34:56");
    }

    fn syncs(shared: &SharedFile) -> u64 {
        locked(&shared.out).syncs
    }

    /// Waits (at most 5 s) until the file has been synced `n` times.
    fn await_syncs(shared: &SharedFile, n: u64) {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while syncs(shared) < n {
            assert!(std::time::Instant::now() < until, "never synced {n} times");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn fsync_interval_zero_syncs_every_write_before_its_acknowledgement() {
        let _turn = INLINE_TESTS.lock().unwrap_or_else(|p| p.into_inner());
        let path = temp_file("audit.log");
        runtime().block_on(async {
            let (shared, writer) = open_synced(&path, Fsync::EveryWrite);
            // Inline: synced when the call returns.
            for i in 0..3u64 {
                assert!(matches!(
                    shared.try_write_inline(b"inline\n", 0, &mut AckChannel::default(), &writer),
                    Inline::Written
                ));
                assert_eq!(syncs(&shared), i + 1);
            }
            // Through the writer thread: synced before the acknowledgement arrives.
            let mut acks = AckChannel::default();
            writer.submit(Job {
                line: b"queued\n".to_vec(),
                idx: 7,
                ack: acks.sender().clone(),
            });
            let (idx, result) = acks.recv().await.unwrap();
            assert_eq!(idx, 7);
            result.unwrap();
            assert_eq!(syncs(&shared), 4);
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                "inline\ninline\ninline\nqueued\n"
            );
        });
    }

    #[test]
    fn fsync_interval_syncs_a_written_file_once_within_the_interval_and_at_the_end() {
        let _turn = INLINE_TESTS.lock().unwrap_or_else(|p| p.into_inner());
        let path = temp_file("audit.log");
        runtime().block_on(async {
            let (shared, writer) = open_synced(&path, Fsync::Within(Duration::from_millis(50)));
            for _ in 0..5 {
                assert!(matches!(
                    shared.try_write_inline(b"line\n", 0, &mut AckChannel::default(), &writer),
                    Inline::Written
                ));
            }
            // The five writes are made durable by one sync of the writer thread.
            await_syncs(&shared, 1);
            // A clean file is not synced again.
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(syncs(&shared), 1);

            // A long interval: the sync happens when the writer stops (device disabled).
            let other = temp_file("audit.log");
            let (shared, writer) = open_synced(&other, Fsync::Within(Duration::from_secs(3600)));
            assert!(matches!(
                shared.try_write_inline(b"last\n", 0, &mut AckChannel::default(), &writer),
                Inline::Written
            ));
            assert_eq!(syncs(&shared), 0);
            drop(writer);
            await_syncs(&shared, 1);
        });
    }

    /// The files of `dir` and their text, by name.
    fn files(dir: &Path) -> std::collections::BTreeMap<String, String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let text = std::fs::read_to_string(e.path()).unwrap();
                (e.file_name().into_string().unwrap(), text)
            })
            .collect()
    }

    fn rotating(path: &Path, rotate: Rotate) -> FileOut {
        let options = FileOptions {
            rotate,
            ..FileOptions::plain()
        };
        FileOut::open(path.to_path_buf(), options).unwrap()
    }

    #[test]
    fn rotated_names_sort_in_time_order_and_are_recognised() {
        let base = std::time::UNIX_EPOCH + Duration::from_secs(1_796_186_096);
        let a = rotated_name(Path::new("/l/audit.log"), base + Duration::from_nanos(5));
        let b = rotated_name(Path::new("/l/audit.log"), base + Duration::from_millis(500));
        let c = rotated_name(Path::new("/l/audit.log"), base + Duration::from_secs(1));
        assert_eq!(
            a,
            PathBuf::from("/l/audit.log.2026-12-02T043456.000000005Z")
        );
        assert!(a < b && b < c);
        for p in [&a, &b, &c] {
            let name = p.file_name().unwrap().to_str().unwrap();
            assert!(is_rotated("audit.log", name), "{name}");
        }
        for other in [
            "audit.log",
            "audit.log.bak",
            "audit.log.1",
            "audit.log.2026-12-02T043456.5Z",
            "other.log.2026-12-02T043456.000000005Z",
        ] {
            assert!(!is_rotated("audit.log", other), "{other}");
        }
    }

    #[test]
    fn max_bytes_starts_a_new_file_between_whole_lines() {
        let path = temp_file("audit.log");
        let dir = path.parent().unwrap().to_path_buf();
        let mut out = rotating(
            &path,
            Rotate {
                max_bytes: Some(100),
                ..Rotate::default()
            },
        );
        // Lines of 30 bytes: three fit under 100, the fourth starts a new file.
        let lines: Vec<String> = (0..10).map(|i| format!("{:029}\n", i)).collect();
        for line in &lines {
            out.write(line.as_bytes()).unwrap();
        }
        let files = files(&dir);
        assert_eq!(files.len(), 4, "{:?}", files.keys());
        assert!(files.values().all(|t| t.len() <= 100 && t.ends_with('\n')));
        // In time order (rotated names, then the current file) the lines are all there, once.
        let mut names: Vec<&String> = files.keys().filter(|n| *n != "audit.log").collect();
        names.sort();
        let mut all: String = names.iter().map(|n| files[*n].as_str()).collect();
        all.push_str(&files["audit.log"]);
        assert_eq!(all, lines.concat());
    }

    #[test]
    fn max_files_removes_the_oldest_rotated_files_only() {
        let path = temp_file("audit.log");
        let dir = path.parent().unwrap().to_path_buf();
        std::fs::write(dir.join("audit.log.bak"), "operator's copy\n").unwrap();
        let mut out = rotating(
            &path,
            Rotate {
                max_bytes: Some(10),
                max_files: Some(2),
                ..Rotate::default()
            },
        );
        for i in 0..6 {
            out.write(format!("line {i}\n").as_bytes()).unwrap();
        }
        let files = files(&dir);
        let rotated: Vec<&String> = files
            .keys()
            .filter(|n| is_rotated("audit.log", n))
            .collect();
        assert_eq!(rotated.len(), 2, "{:?}", files.keys());
        assert_eq!(files["audit.log"], "line 5\n");
        let kept: Vec<&str> = rotated.iter().map(|n| files[*n].as_str()).collect();
        assert_eq!(kept, vec!["line 3\n", "line 4\n"]);
        assert_eq!(files["audit.log.bak"], "operator's copy\n");
    }

    #[test]
    fn devices_and_fifos_are_never_rotated_nor_synced() {
        let dir = temp_file("x");
        let dir = dir.parent().unwrap();
        let fifo = dir.join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let _reader = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        for path in [PathBuf::from("/dev/null"), fifo.clone()] {
            let options = FileOptions {
                mode: None,
                fsync: Fsync::EveryWrite,
                rotate: Rotate {
                    max_bytes: Some(1),
                    max_age: Some(Duration::from_nanos(1)),
                    max_files: Some(1),
                },
            };
            let mut out = FileOut::open(path.clone(), options).unwrap();
            for _ in 0..3 {
                out.write(b"line\n").unwrap();
            }
            assert_eq!(out.syncs, 0, "{}", path.display());
        }
        assert!(Path::new("/dev/null").exists());
        let names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with("fifo.")), "{names:?}");
    }

    #[test]
    fn max_age_starts_a_new_file_for_a_write_after_it() {
        let path = temp_file("audit.log");
        let dir = path.parent().unwrap().to_path_buf();
        let mut out = rotating(
            &path,
            Rotate {
                max_age: Some(Duration::from_millis(1)),
                ..Rotate::default()
            },
        );
        out.write(b"first\n").unwrap();
        std::thread::sleep(Duration::from_millis(5));
        out.write(b"second\n").unwrap();
        let files = files(&dir);
        assert_eq!(files.len(), 2);
        assert_eq!(files["audit.log"], "second\n");
        assert!(files.values().any(|t| t == "first\n"));
    }
}
