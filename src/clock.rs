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
    /// A mock clock frozen at the current real time, on a whole second (so that TTLs counted
    /// from "now rounded to the second", as Vault counts them, come out exact).
    pub fn new() -> Arc<Self> {
        let now = i64::try_from(unix_nanos(SystemTime::now())).unwrap_or(i64::MAX);
        let now = now - now.rem_euclid(1_000_000_000);
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
    // Seconds since the epoch (negative before it) and the nanoseconds after them.
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    };
    let mut buf = [0u8; 48];
    let n = write_rfc3339(&mut buf, secs, nanos);
    f(std::str::from_utf8(buf.get(..n).unwrap_or_default()).unwrap_or_default())
}

/// The civil date of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = (yoe + era.saturating_mul(400)).saturating_add(i64::from(month <= 2));
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// Writes a time as Go's `time.RFC3339Nano` does (UTC: years padded to four digits, trailing
/// zeros of the fraction trimmed); returns the length.
fn write_rfc3339(buf: &mut [u8; 48], secs: i64, nanos: u32) -> usize {
    /// Writes `v` as `width` digits at `at`; returns the position after them.
    fn digits(buf: &mut [u8; 48], at: usize, v: u64, width: u32) -> usize {
        for i in 0..width {
            if let Some(b) = buf.get_mut(at + i as usize) {
                // A single decimal digit.
                *b = b'0' + (v / 10u64.pow(width - 1 - i) % 10) as u8;
            }
        }
        at + width as usize
    }
    fn put(buf: &mut [u8; 48], at: usize, c: u8) -> usize {
        if let Some(b) = buf.get_mut(at) {
            *b = c;
        }
        at + 1
    }
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400).unsigned_abs();
    let mut at = 0;
    if year < 0 {
        at = put(buf, at, b'-');
    }
    let y = year.unsigned_abs();
    let width = y.checked_ilog10().unwrap_or(0).max(3) + 1;
    at = digits(buf, at, y, width);
    at = put(buf, at, b'-');
    at = digits(buf, at, u64::from(month), 2);
    at = put(buf, at, b'-');
    at = digits(buf, at, u64::from(day), 2);
    at = put(buf, at, b'T');
    at = digits(buf, at, rem / 3600, 2);
    at = put(buf, at, b':');
    at = digits(buf, at, rem / 60 % 60, 2);
    at = put(buf, at, b':');
    at = digits(buf, at, rem % 60, 2);
    let mut nanos = nanos % 1_000_000_000;
    if nanos > 0 {
        let mut width = 9;
        while nanos.is_multiple_of(10) {
            nanos /= 10;
            width -= 1;
        }
        at = put(buf, at, b'.');
        at = digits(buf, at, u64::from(nanos), width);
    }
    put(buf, at, b'Z')
}

/// Go's zero time as RFC 3339, which Vault prints for "no expiration".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_by_hand_is_humantimes_trimmed() {
        // humantime's text (nine digits) trimmed as Go trims it: the oracle for 1970-9999.
        let oracle = |t: SystemTime| {
            let text = humantime::format_rfc3339_nanos(t).to_string();
            let head = text.strip_suffix('Z').unwrap().trim_end_matches('0');
            format!("{}Z", head.strip_suffix('.').unwrap_or(head))
        };
        let year_10000 = 253_402_300_800u64;
        let mut cases = vec![
            Duration::ZERO,
            Duration::new(951_782_400, 0),             // 2000-02-29
            Duration::new(4_107_542_400, 1),           // 2100-03-01
            Duration::new(1_704_067_199, 999_999_999), // 2023-12-31T23:59:59.999999999
            Duration::new(year_10000 - 1, 500_000_000),
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let nanos = match x % 4 {
                0 => 0,
                1 => (x >> 8) as u32 % 1_000 * 1_000_000,
                _ => (x >> 8) as u32 % 1_000_000_000,
            };
            cases.push(Duration::new((x >> 20) % year_10000, nanos));
        }
        for d in cases {
            let t = UNIX_EPOCH + d;
            assert_eq!(rfc3339_nanos(t), oracle(t), "{d:?}");
        }
        // Beyond humantime's range, as Go prints them.
        let before = UNIX_EPOCH - Duration::new(86_400, 250_000_000);
        assert_eq!(rfc3339_nanos(before), "1969-12-30T23:59:59.75Z");
        let late = UNIX_EPOCH + Duration::from_secs(year_10000);
        assert_eq!(rfc3339_nanos(late), "10000-01-01T00:00:00Z");
    }

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
