//! The units of BridgeCore's YAML file: durations, sizes and rates.
//!
//! The grammar is deliberately small and strict, so a typo is an error instead of a surprise:
//!
//! | kind | syntax | examples |
//! |---|---|---|
//! | duration | an unsigned integer directly followed by `ms`, `s`, `m`, `h` or `d` | `500ms`, `30s`, `5m`, `1h`, `7d`, `0s` |
//! | size | an unsigned integer, optionally followed by `B`, a binary unit `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024) or a decimal unit `KB`/`kB`/`MB`/`GB`/`TB` (powers of 1000, as SI and IEC define them) | `1000`, `1000B`, `512KiB`, `64MiB`, `1GiB`, `10MB` |
//! | rate | an unsigned integer, `/`, then `second`, `minute`, `hour`, `day` (or `s`, `m`, `h`, `d`), or a duration | `10/minute`, `100/s`, `5/30s` |
//!
//! No signs, no fractions (`1.5h` is `90m`), no spaces, no unit-less durations (`30` could be
//! seconds or milliseconds), and the unit spellings are case-sensitive (`64M`, `64mb` and `64mib`
//! are rejected rather than guessed). Values that overflow (`u64` bytes, `u64` seconds) are errors.
//!
//! Each kind formats back to a canonical string that parses to the same value: [`HumanDuration`]
//! uses the largest unit that divides the value exactly (`720s` prints as `12m`), [`HumanSize`]
//! the largest binary unit that does (`65536` prints as `64KiB`; `1000` stays `1000`), and
//! [`Rate`] the unit word (`10/minute`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

const DURATION_HELP: &str = "expected a number and one of ms, s, m, h, d (e.g. `30s`)";
const SIZE_HELP: &str = "expected a number of bytes, optionally followed by B, KiB, MiB, GiB, TiB \
     (powers of 1024) or KB, MB, GB, TB (powers of 1000) (e.g. `64MiB`)";
const RATE_HELP: &str =
    "expected N/second, N/minute, N/hour or N/day (or N/s, N/m, N/h, N/d, or N/<duration>) \
     (e.g. `100/minute`)";

/// Why a duration, size or rate did not parse. The message quotes the input and says what was
/// expected, e.g. ``invalid duration `5x`: expected a number and one of ms, s, m, h, d``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// A malformed or out-of-range duration.
    #[error("invalid duration `{input}`: {reason}")]
    Duration {
        /// The text as written.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A malformed or out-of-range size.
    #[error("invalid size `{input}`: {reason}")]
    Size {
        /// The text as written.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A malformed rate.
    #[error("invalid rate `{input}`: {reason}")]
    Rate {
        /// The text as written.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn duration_err(input: &str, reason: impl Into<String>) -> UnitError {
    UnitError::Duration {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

fn size_err(input: &str, reason: impl Into<String>) -> UnitError {
    UnitError::Size {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

fn rate_err(input: &str, reason: impl Into<String>) -> UnitError {
    UnitError::Rate {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

/// Splits `123abc` into `("123", "abc")`; the number part may be empty.
fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(s.len(), |(i, _)| i);
    s.split_at(end)
}

/// Checks for the mistakes people actually make, to give a more precise reason than the
/// general help text. Returns `None` when nothing specific applies.
fn common_mistake(s: &str) -> Option<&'static str> {
    if s.starts_with('-') {
        Some("negative values are not allowed")
    } else if s.starts_with('+') {
        Some("write the number without a sign")
    } else if s.chars().any(char::is_whitespace) {
        Some("remove the spaces (write e.g. `30s`, not `30 s`)")
    } else {
        let (number, rest) = split_number(s);
        if !number.is_empty() && rest.starts_with(['.', ',']) {
            Some("fractions are not supported: use a smaller unit (e.g. `90m` instead of `1.5h`)")
        } else {
            None
        }
    }
}

/// Parses a duration such as `500ms`, `30s`, `5m`, `1h` or `7d` (see the module docs).
///
/// ```
/// use bridgecore_filters::units::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
/// assert!(parse_duration("5").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    if let Some(reason) = common_mistake(s) {
        return Err(duration_err(s, reason));
    }
    let (number, unit) = split_number(s);
    if number.is_empty() {
        return Err(duration_err(s, DURATION_HELP));
    }
    let secs_per_unit = match unit {
        "ms" => None,
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3_600),
        "d" => Some(86_400),
        "" => {
            return Err(duration_err(
                s,
                format!("missing unit: {DURATION_HELP}, e.g. `{number}s`"),
            ))
        }
        _ => return Err(duration_err(s, DURATION_HELP)),
    };
    let too_large = || duration_err(s, "the value is too large");
    let n: u64 = number.parse().map_err(|_| too_large())?;
    match secs_per_unit {
        None => Ok(Duration::from_millis(n)),
        Some(k) => n
            .checked_mul(k)
            .map(Duration::from_secs)
            .ok_or_else(too_large),
    }
}

/// Parses a size such as `1000`, `1000B`, `512KiB`, `64MiB`, `1GiB` or `10MB` into bytes.
///
/// Binary units (`KiB`, `MiB`, `GiB`, `TiB`) are powers of 1024; decimal units (`KB`/`kB`, `MB`,
/// `GB`, `TB`) are powers of 1000, as their standard definitions say.
///
/// ```
/// use bridgecore_filters::units::parse_size;
/// assert_eq!(parse_size("64MiB").unwrap(), 64 * 1024 * 1024);
/// assert_eq!(parse_size("1000").unwrap(), 1000);
/// ```
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    if let Some(reason) = common_mistake(s) {
        return Err(size_err(s, reason));
    }
    let (number, unit) = split_number(s);
    if number.is_empty() {
        return Err(size_err(s, SIZE_HELP));
    }
    let factor: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(size_err(s, SIZE_HELP)),
    };
    let too_large = || size_err(s, "the value is too large");
    let n: u64 = number.parse().map_err(|_| too_large())?;
    n.checked_mul(factor).ok_or_else(too_large)
}

/// A request rate: `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// How many requests the window allows.
    pub count: u64,
    /// The window length (never zero when parsed).
    pub per: Duration,
}

impl Rate {
    /// `count` per second.
    pub const fn per_second(count: u64) -> Rate {
        Rate {
            count,
            per: Duration::from_secs(1),
        }
    }

    /// `count` per minute.
    pub const fn per_minute(count: u64) -> Rate {
        Rate {
            count,
            per: Duration::from_secs(60),
        }
    }

    /// `count` per hour.
    pub const fn per_hour(count: u64) -> Rate {
        Rate {
            count,
            per: Duration::from_secs(3_600),
        }
    }
}

/// Parses a rate such as `10/minute`, `100/s` or `5/30s` (see the module docs).
///
/// ```
/// use bridgecore_filters::units::{parse_rate, Rate};
/// assert_eq!(parse_rate("10/minute").unwrap(), Rate::per_minute(10));
/// ```
pub fn parse_rate(s: &str) -> Result<Rate, UnitError> {
    let Some((number, window)) = s.split_once('/') else {
        return Err(rate_err(s, RATE_HELP));
    };
    if let Some(reason) = common_mistake(number).or_else(|| common_mistake(window)) {
        return Err(rate_err(s, reason));
    }
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(rate_err(s, RATE_HELP));
    }
    let count: u64 = number
        .parse()
        .map_err(|_| rate_err(s, "the count is too large"))?;
    let per = match window {
        "second" | "s" => Duration::from_secs(1),
        "minute" | "m" => Duration::from_secs(60),
        "hour" | "h" => Duration::from_secs(3_600),
        "day" | "d" => Duration::from_secs(86_400),
        other if other.starts_with(|c: char| c.is_ascii_digit()) => match parse_duration(other) {
            Ok(d) if d.is_zero() => return Err(rate_err(s, "the window must not be zero")),
            Ok(d) => d,
            Err(_) => return Err(rate_err(s, RATE_HELP)),
        },
        _ => return Err(rate_err(s, RATE_HELP)),
    };
    Ok(Rate { count, per })
}

impl FromStr for Rate {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_rate(s)
    }
}

impl fmt::Display for Rate {
    /// `10/minute`; a window that is not one second, minute, hour or day prints as a duration
    /// (`5/30s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.per.as_secs() {
            1 => "second",
            60 => "minute",
            3_600 => "hour",
            86_400 => "day",
            _ => "",
        };
        if !word.is_empty() && self.per.subsec_nanos() == 0 {
            write!(f, "{}/{word}", self.count)
        } else {
            write!(f, "{}/{}", self.count, HumanDuration(self.per))
        }
    }
}

/// A [`Duration`] that prints and parses in the YAML syntax (`30s`, `5m`).
///
/// Display uses the largest unit that divides the value exactly; a value that is not a whole
/// number of milliseconds (never produced by parsing) prints in Rust's debug form (`1.5µs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        if !d.subsec_nanos().is_multiple_of(1_000_000) {
            return write!(f, "{d:?}");
        }
        let ms = d.as_millis();
        for (unit_ms, unit) in [
            (86_400_000u128, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
        ] {
            if ms.is_multiple_of(unit_ms) {
                return write!(f, "{}{unit}", ms / unit_ms);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl FromStr for HumanDuration {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(HumanDuration)
    }
}

/// A byte count that prints and parses in the YAML syntax (`64MiB`, `1000`).
///
/// Display uses the largest binary unit that divides the value exactly, else plain bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanSize(pub u64);

impl fmt::Display for HumanSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (shift, unit) in [(40u32, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
            let k = 1u64 << shift;
            if n >= k && n.is_multiple_of(k) {
                return write!(f, "{}{unit}", n / k);
            }
        }
        write!(f, "{n}")
    }
}

impl FromStr for HumanSize {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_size(s).map(HumanSize)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), secs(30));
        assert_eq!(parse_duration("5m").unwrap(), secs(300));
        assert_eq!(parse_duration("1h").unwrap(), secs(3_600));
        assert_eq!(parse_duration("7d").unwrap(), secs(7 * 86_400));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0ms").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("720s").unwrap(), secs(720));
    }

    #[test]
    fn bad_durations_are_rejected_with_a_reason() {
        assert_eq!(
            parse_duration("5x").unwrap_err().to_string(),
            "invalid duration `5x`: expected a number and one of ms, s, m, h, d (e.g. `30s`)"
        );
        let missing = parse_duration("30").unwrap_err().to_string();
        assert!(missing.contains("missing unit"), "{missing}");
        assert!(missing.contains("`30s`"), "{missing}");
        let negative = parse_duration("-5s").unwrap_err().to_string();
        assert!(negative.contains("negative"), "{negative}");
        let fraction = parse_duration("1.5h").unwrap_err().to_string();
        assert!(fraction.contains("fractions"), "{fraction}");
        for bad in [
            "", "s", "ms", "5 s", " 5s", "5S", "5sec", "5mins", "+5s", "5s5", "1e3s", "0x10s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn duration_overflow_is_an_error() {
        let max = u64::MAX.to_string();
        assert_eq!(
            parse_duration(&format!("{max}s")).unwrap(),
            Duration::from_secs(u64::MAX)
        );
        let err = parse_duration(&format!("{max}d")).unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
        let err = parse_duration("99999999999999999999999s")
            .unwrap_err()
            .to_string();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn durations_format_canonically_and_round_trip() {
        for (d, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1_500), "1500ms"),
            (secs(30), "30s"),
            (secs(300), "5m"),
            (secs(720), "12m"),
            (secs(3_600), "1h"),
            (secs(7 * 86_400), "7d"),
            (secs(90_000), "25h"),
        ] {
            assert_eq!(HumanDuration(d).to_string(), text);
            assert_eq!(text.parse::<HumanDuration>().unwrap(), HumanDuration(d));
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1000").unwrap(), 1_000);
        assert_eq!(parse_size("1000B").unwrap(), 1_000);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("512KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size("64MiB").unwrap(), 64 * 1024 * 1024);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("2TiB").unwrap(), 2 << 40);
        assert_eq!(parse_size("10KB").unwrap(), 10_000);
        assert_eq!(parse_size("10kB").unwrap(), 10_000);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("1TB").unwrap(), 1_000_000_000_000);
    }

    #[test]
    fn bad_sizes_are_rejected() {
        let err = parse_size("64M").unwrap_err().to_string();
        assert!(err.starts_with("invalid size `64M`: expected"), "{err}");
        for bad in [
            "", "MiB", "64mib", "64mb", "64 MiB", "-1", "1.5MiB", "64Mi", "64KIB", "0x40",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be rejected");
        }
        let err = parse_size("17179869184GiB").unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
        let err = parse_size("99999999999999999999").unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn sizes_format_canonically_and_round_trip() {
        for (n, text) in [
            (0u64, "0"),
            (1_000, "1000"),
            (1_024, "1KiB"),
            (1_536, "1536"),
            (512 * 1024, "512KiB"),
            (64 << 20, "64MiB"),
            (256 << 20, "256MiB"),
            (1 << 30, "1GiB"),
            (3 << 40, "3TiB"),
        ] {
            assert_eq!(HumanSize(n).to_string(), text);
            assert_eq!(text.parse::<HumanSize>().unwrap(), HumanSize(n));
        }
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("10/minute").unwrap(), Rate::per_minute(10));
        assert_eq!(parse_rate("10/m").unwrap(), Rate::per_minute(10));
        assert_eq!(parse_rate("100/second").unwrap(), Rate::per_second(100));
        assert_eq!(parse_rate("100/s").unwrap(), Rate::per_second(100));
        assert_eq!(parse_rate("5/hour").unwrap(), Rate::per_hour(5));
        assert_eq!(parse_rate("5/h").unwrap(), Rate::per_hour(5));
        assert_eq!(
            parse_rate("1000/day").unwrap(),
            Rate {
                count: 1000,
                per: secs(86_400)
            }
        );
        assert_eq!(
            parse_rate("5/30s").unwrap(),
            Rate {
                count: 5,
                per: secs(30)
            }
        );
        assert_eq!(parse_rate("0/minute").unwrap(), Rate::per_minute(0));
    }

    #[test]
    fn bad_rates_are_rejected() {
        let err = parse_rate("10/fortnight").unwrap_err().to_string();
        assert!(
            err.starts_with("invalid rate `10/fortnight`: expected N/second"),
            "{err}"
        );
        for bad in [
            "",
            "10",
            "/minute",
            "10/",
            "ten/minute",
            "-1/minute",
            "10 / minute",
            "1.5/minute",
            "10/0s",
            "10/minutes",
            "10/Minute",
            "10/x5",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn rates_format_canonically_and_round_trip() {
        for text in [
            "10/second",
            "100/minute",
            "5/hour",
            "7/day",
            "5/30s",
            "3/500ms",
        ] {
            let rate: Rate = text.parse().unwrap();
            assert_eq!(rate.to_string(), text);
        }
        assert_eq!(parse_rate("10/m").unwrap().to_string(), "10/minute");
        assert_eq!(parse_rate("10/60s").unwrap().to_string(), "10/minute");
    }
}
