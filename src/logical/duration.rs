//! Durations the way Vault reads and prints them: the one parser of Go's `time.ParseDuration`
//! syntax (`"1h30m"`, `"1.5h"`, `"500ms"`), Vault's `parseutil.ParseDurationSecond` on top of it
//! (a bare integer is seconds, `"<n>d"` is days), and Go's `Duration.String()` for whole seconds.
//!
//! Error texts are Go's (`time: invalid duration "x"`, `time: missing unit in duration "1.5"`,
//! `time: unknown unit "x" in duration "5x"`), checked against OpenBao. One deliberate difference:
//! where Go silently wraps (`"300000000000"` seconds, `"200000d"` days overflow its int64 of
//! nanoseconds), the values here are exact, in `i128` nanoseconds.

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Go's largest magnitude of a `time.Duration`, in nanoseconds (the negative end is -2^63).
const LIMIT: u64 = 1 << 63;

/// Vault's `ParseDurationSecond` of a string, in nanoseconds: `""` is zero, an integer
/// (`"300"`) is seconds, `"<n>d"` is days, anything else is a Go duration. Negative values are
/// returned as such; callers decide whether they are allowed. No whitespace is trimmed (Vault
/// refuses `" 5s"`).
pub fn parse_duration_nanos(input: &str) -> Result<i128, String> {
    if input.is_empty() {
        return Ok(0);
    }
    if let Ok(secs) = input.parse::<i64>() {
        return Ok(i128::from(secs) * NANOS_PER_SECOND);
    }
    if let Some(days) = input.strip_suffix('d') {
        let days = days.parse::<i64>().map_err(|e| {
            let reason = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    "value out of range"
                }
                _ => "invalid syntax",
            };
            format!("strconv.ParseInt: parsing {days:?}: {reason}")
        })?;
        return Ok(i128::from(days) * 86_400 * NANOS_PER_SECOND);
    }
    parse_go_duration(input).map(i128::from)
}

/// [`parse_duration_nanos`] in whole seconds, truncated toward zero (Go's `int(d.Seconds())`):
/// `"250ms"` is 0, `"1m0.5s"` is 60.
pub fn parse_duration_seconds(input: &str) -> Result<i64, String> {
    let secs = parse_duration_nanos(input)? / NANOS_PER_SECOND;
    Ok(i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX }))
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` or `"0"`, in nanoseconds, with
/// Go's overflow rules (the total must fit an `i64`) and Go's rounding of fractions.
pub fn parse_go_duration(input: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(input));
    let (negative, mut rest) = match input.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, input.strip_prefix('+').unwrap_or(input)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let is_digit = |c: char| c.is_ascii_digit();
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let (int_digits, tail) = rest.split_at(rest.find(|c| !is_digit(c)).unwrap_or(rest.len()));
        let whole = leading_int(int_digits).ok_or_else(invalid)?;
        let (frac_digits, tail) = match tail.strip_prefix('.') {
            Some(t) => t.split_at(t.find(|c| !is_digit(c)).unwrap_or(t.len())),
            None => ("", tail),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            // A lone `.`, as in ".s".
            return Err(invalid());
        }
        let (unit, next) = tail.split_at(
            tail.find(|c: char| c == '.' || is_digit(c))
                .unwrap_or(tail.len()),
        );
        let unit_nanos: u64 = match unit {
            "" => {
                return Err(format!(
                    "time: missing unit in duration {}",
                    go_quote(input)
                ));
            }
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(other),
                    go_quote(input)
                ));
            }
        };
        if whole > LIMIT / unit_nanos {
            return Err(invalid());
        }
        let mut value = whole * unit_nanos;
        let (frac, scale) = leading_fraction(frac_digits);
        if frac > 0 {
            // Go computes the fraction in float64 and truncates; at most 3.6e12 ns (an hour).
            let part = (frac as f64 * (unit_nanos as f64 / scale)) as u64;
            value = value
                .checked_add(part)
                .filter(|v| *v <= LIMIT)
                .ok_or_else(invalid)?;
        }
        total = total
            .checked_add(value)
            .filter(|t| *t <= LIMIT)
            .ok_or_else(invalid)?;
        rest = next;
    }
    if negative {
        0i64.checked_sub_unsigned(total).ok_or_else(invalid)
    } else {
        i64::try_from(total).map_err(|_| invalid())
    }
}

/// The integer part of one duration element; `None` past 2^63, as Go's `leadingInt`.
fn leading_int(digits: &str) -> Option<u64> {
    digits.bytes().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?
            .checked_add(u64::from(d - b'0'))
            .filter(|v| *v <= LIMIT)
    })
}

/// The fraction digits as an integer and its scale (`"25"` → 25, 100.0). Digits past the
/// precision of an `i64` are ignored, as Go's `leadingFraction` does.
fn leading_fraction(digits: &str) -> (u64, f64) {
    let mut value: u64 = 0;
    let mut scale = 1.0;
    for d in digits.bytes() {
        let next = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .filter(|v| *v <= LIMIT && value <= (LIMIT - 1) / 10);
        match next {
            Some(v) => {
                value = v;
                scale *= 10.0;
            }
            None => break,
        }
    }
    (value, scale)
}

/// Go's `time` package quoting: ASCII as is (with `"` and `\` escaped), every byte of a control
/// or non-ASCII character as `\xNN`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if (' '..='\x7f').contains(&c) {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str("\\x");
                out.push_str(&hex::encode([b]));
            }
        }
    }
    out.push('"');
    out
}

/// Go's `time.Duration.String()` for whole seconds: `3600` → `"1h0m0s"`, `60` → `"1m0s"`.
pub fn go_duration(secs: i64) -> String {
    if secs == 0 {
        return "0s".to_string();
    }
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{sign}{m}m{sec}s")
    } else {
        format!("{sign}{sec}s")
    }
}

/// The CLI's prettified form (zero units dropped): `3600` → `"1h"`, `5400` → `"1h30m"`.
pub fn pretty_duration(secs: i64) -> String {
    let full = go_duration(secs);
    if full == "0s" {
        return full;
    }
    let trimmed = full.replace("h0m0s", "h").replace("m0s", "m");
    if let Some(stripped) = trimmed.strip_suffix("h0m") {
        format!("{stripped}h")
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: i64 = i64::MAX;

    /// Go's `time.ParseDuration`; the error cases' texts are OpenBao's answers to the same input.
    #[test]
    fn go_syntax_values_and_errors() {
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("5s", 5_000_000_000),
            ("+5s", 5_000_000_000),
            ("-5s", -5_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("1m0.5s", 60_500_000_000),
            (".5s", 500_000_000),
            ("5.s", 5_000_000_000),
            ("500ms", 500_000_000),
            ("3us", 3_000),
            ("3µs", 3_000),
            ("3μs", 3_000),
            ("7ns", 7),
            ("1h1h", 7_200_000_000_000),
            ("0.000000001s", 1),
            ("1.0000000000000000001h", 3_600_000_000_000),
            ("9223372036854775807ns", MAX),
            ("2562047h47m16.854775807s", MAX),
            ("-9223372036854775808ns", i64::MIN),
        ];
        for (input, want) in ok {
            assert_eq!(parse_go_duration(input), Ok(*want), "{input}");
        }
        let errors: &[(&str, &str)] = &[
            ("", r#"time: invalid duration """#),
            ("-", r#"time: invalid duration "-""#),
            ("abc", r#"time: invalid duration "abc""#),
            (".s", r#"time: invalid duration ".s""#),
            ("+-5s", r#"time: invalid duration "+-5s""#),
            (" 5s", r#"time: invalid duration " 5s""#),
            (
                "9223372036854775808ns",
                r#"time: invalid duration "9223372036854775808ns""#,
            ),
            ("2562048h", r#"time: invalid duration "2562048h""#),
            (
                "99999999999999999999s",
                r#"time: invalid duration "99999999999999999999s""#,
            ),
            (
                "-9223372036854775809ns",
                r#"time: invalid duration "-9223372036854775809ns""#,
            ),
            ("1.5", r#"time: missing unit in duration "1.5""#),
            ("5", r#"time: missing unit in duration "5""#),
            ("5x", r#"time: unknown unit "x" in duration "5x""#),
            ("1e3s", r#"time: unknown unit "e" in duration "1e3s""#),
            ("5m 3s", r#"time: unknown unit "m " in duration "5m 3s""#),
            (
                "5 minutes",
                r#"time: unknown unit " minutes" in duration "5 minutes""#,
            ),
            ("é", r#"time: invalid duration "\xc3\xa9""#),
            (
                "5é",
                r#"time: unknown unit "\xc3\xa9" in duration "5\xc3\xa9""#,
            ),
            ("\"\n", r#"time: invalid duration "\"\x0a""#),
        ];
        for (input, want) in errors {
            assert_eq!(
                parse_go_duration(input),
                Err((*want).to_owned()),
                "{input:?}"
            );
        }
    }

    /// Vault's `ParseDurationSecond`: integers are seconds, `d` is days, the rest is Go's.
    #[test]
    fn vault_seconds_and_days() {
        assert_eq!(parse_duration_nanos(""), Ok(0));
        assert_eq!(parse_duration_nanos("30"), Ok(30_000_000_000));
        assert_eq!(parse_duration_nanos("+30"), Ok(30_000_000_000));
        assert_eq!(parse_duration_nanos("-30"), Ok(-30_000_000_000));
        assert_eq!(parse_duration_nanos("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration_nanos("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration_nanos("2d"), Ok(172_800_000_000_000));
        assert_eq!(parse_duration_nanos("-1.5s"), Ok(-1_500_000_000));
        assert_eq!(
            parse_duration_nanos("xd"),
            Err(r#"strconv.ParseInt: parsing "x": invalid syntax"#.to_owned())
        );
        assert_eq!(
            parse_duration_nanos("1.5d"),
            Err(r#"strconv.ParseInt: parsing "1.5": invalid syntax"#.to_owned())
        );
        assert_eq!(
            parse_duration_nanos("99999999999999999999d"),
            Err(
                r#"strconv.ParseInt: parsing "99999999999999999999": value out of range"#
                    .to_owned()
            )
        );
        assert_eq!(
            parse_duration_nanos("5 minutes"),
            Err(r#"time: unknown unit " minutes" in duration "5 minutes""#.to_owned())
        );
        for (input, want) in [
            ("300", 300),
            ("5m", 300),
            ("1m0s", 60),
            ("768h", 2_764_800),
            ("2d", 172_800),
            ("1.5h", 5400),
            ("1m0.5s", 60),
            ("250ms", 0),
            ("-1.5s", -1),
            ("", 0),
        ] {
            assert_eq!(parse_duration_seconds(input), Ok(want), "{input}");
        }
        assert_eq!(
            parse_duration_seconds("abc"),
            Err(r#"time: invalid duration "abc""#.to_owned())
        );
    }

    #[test]
    fn go_duration_formatting() {
        assert_eq!(go_duration(3600), "1h0m0s");
        assert_eq!(go_duration(60), "1m0s");
        assert_eq!(go_duration(5), "5s");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(pretty_duration(3600), "1h");
        assert_eq!(pretty_duration(5400), "1h30m");
        assert_eq!(pretty_duration(90), "1m30s");
        assert_eq!(pretty_duration(2_764_799), "767h59m59s");
        assert_eq!(pretty_duration(14400), "4h");
        assert_eq!(pretty_duration(2700), "45m");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Go durations built from their parts read back exactly, in both forms.
        #[test]
        fn go_durations_round_trip(
            h in 0i64..10_000, m in 0i64..600, s in 0i64..600, ms in 0i64..1000, neg: bool,
        ) {
            let sign = if neg { "-" } else { "" };
            let text = format!("{sign}{h}h{m}m{s}s{ms}ms");
            let millis = ((h * 60 + m) * 60 + s) * 1000 + ms;
            let nanos = i128::from(if neg { -millis } else { millis }) * 1_000_000;
            proptest::prop_assert_eq!(parse_duration_nanos(&text), Ok(nanos));
            let secs = i64::try_from(nanos / 1_000_000_000).unwrap();
            proptest::prop_assert_eq!(parse_duration_seconds(&text), Ok(secs));
        }

        /// Go's formatting reads back.
        #[test]
        fn formatting_round_trips(secs in -1_000_000_000i64..1_000_000_000) {
            proptest::prop_assert_eq!(parse_duration_seconds(&go_duration(secs)), Ok(secs));
            proptest::prop_assert_eq!(parse_duration_seconds(&pretty_duration(secs)), Ok(secs));
        }

        /// Whole numbers are seconds.
        #[test]
        fn integers_are_seconds(n in proptest::num::i64::ANY) {
            proptest::prop_assert_eq!(parse_duration_nanos(&n.to_string()), Ok(i128::from(n) * 1_000_000_000));
            proptest::prop_assert_eq!(parse_duration_seconds(&n.to_string()), Ok(n));
        }

        /// Any text, including huge numbers and fractions, gives a value or an error, no panic.
        #[test]
        fn arbitrary_text_never_panics(text in "[-+0-9.a-zµμ ]{0,40}") {
            let _ = parse_duration_nanos(&text);
            let _ = parse_duration_seconds(&text);
        }

        #[test]
        fn arbitrary_unicode_never_panics(text in "\\PC{0,24}") {
            let _ = parse_duration_nanos(&text);
            let _ = parse_duration_seconds(&text);
        }
    }
}
