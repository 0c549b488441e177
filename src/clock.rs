//! Time, behind a trait so that TTLs, expiry and tidy can be tested without sleeping.
//!
//! Everything that asks "what time is it" goes through `Clock::now`; tests install a `MockClock`
//! and move it forward.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A frozen clock for tests: it starts at the real time and moves only when advanced, so TTL
/// arithmetic in tests is exact however slow the machine is.
#[derive(Debug)]
pub struct MockClock {
    nanos: AtomicI64,
}

impl MockClock {
    /// A mock clock frozen at the current real time.
    pub fn new() -> Arc<Self> {
        let now = i64::try_from(unix_nanos(SystemTime::now())).unwrap_or(i64::MAX);
        Arc::new(MockClock {
            nanos: AtomicI64::new(now),
        })
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.nanos.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for MockClock {
    fn now(&self) -> SystemTime {
        from_unix_nanos(i128::from(self.nanos.load(Ordering::SeqCst)))
    }
}

/// Seconds since the Unix epoch (negative before it, which never happens in practice).
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Nanoseconds since the Unix epoch.
pub fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

/// A time from Unix nanoseconds.
pub fn from_unix_nanos(n: i128) -> SystemTime {
    let d = Duration::from_nanos(u64::try_from(n.unsigned_abs()).unwrap_or(u64::MAX));
    if n >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

/// RFC 3339 in UTC with nanoseconds, as Go's `time.RFC3339Nano` prints (trailing zeros trimmed).
pub fn rfc3339_nanos(t: SystemTime) -> String {
    with_rfc3339_nanos(t, str::to_owned)
}

/// Calls `f` with [`rfc3339_nanos`]'s text, formatted on the stack (no allocation).
pub fn with_rfc3339_nanos<R>(t: SystemTime, f: impl FnOnce(&str) -> R) -> R {
    use std::io::Write as _;
    let mut buf = [0u8; 40];
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cur, "{}", humantime::format_rfc3339_nanos(t));
    let n = usize::try_from(cur.position()).unwrap_or(0);
    let text = std::str::from_utf8(buf.get(..n).unwrap_or_default()).unwrap_or_default();
    // humantime always prints nine digits; Go trims trailing zeros (and the dot if nothing is left).
    let Some(head) = text.strip_suffix('Z') else {
        return f(text);
    };
    let trimmed = head.trim_end_matches('0');
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    let mut out = [0u8; 40];
    let len = trimmed.len();
    if let Some(dst) = out.get_mut(..=len)
        && let Some((z, digits)) = dst.split_last_mut()
    {
        digits.copy_from_slice(trimmed.as_bytes());
        *z = b'Z';
    }
    f(std::str::from_utf8(out.get(..=len).unwrap_or_default()).unwrap_or_default())
}

/// Go's zero time as RFC 3339, which Vault prints for "no expiration".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_trims_like_go() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_400_000);
        assert_eq!(rfc3339_nanos(t), "2023-11-14T22:13:20.1234Z");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 0);
        assert_eq!(rfc3339_nanos(t), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn mock_clock_is_frozen_until_advanced() {
        let c = MockClock::new();
        let a = c.now();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.now(), a);
        c.advance(Duration::from_secs(3600));
        assert_eq!(
            c.now().duration_since(a).unwrap(),
            Duration::from_secs(3600)
        );
    }
}
