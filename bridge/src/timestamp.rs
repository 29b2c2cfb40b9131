//! Device timestamps in the forms firmware sends them, and the RFC 3339 form the bridge writes.

use jiff::Timestamp;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimestampError {
    #[error("timestamp `{0}` is neither RFC 3339 nor epoch seconds/milliseconds")]
    Unrecognised(String),
    #[error("timestamp {0} is negative or out of range")]
    OutOfRange(String),
}

/// Milliseconds since the Unix epoch, UTC.
pub type EpochMillis = i64;

/// Epoch numbers are told apart by magnitude: below 1e11 they are seconds (until the year 5138),
/// below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds.
pub fn from_epoch_number(value: f64) -> Result<EpochMillis, TimestampError> {
    if !value.is_finite() || value < 0.0 {
        return Err(TimestampError::OutOfRange(value.to_string()));
    }
    let millis = if value < 1e11 {
        value * 1e3
    } else if value < 1e14 {
        value
    } else if value < 1e17 {
        value / 1e3
    } else {
        value / 1e6
    };
    // Cast is exact after rounding: the largest millisecond value here is below 2^53.
    let millis = millis.round() as i64;
    Timestamp::from_millisecond(millis)
        .map(|_| millis)
        .map_err(|_| TimestampError::OutOfRange(value.to_string()))
}

/// RFC 3339 (`2026-11-25T10:00:00Z`, `…+01:00`, fractional seconds) or an epoch number in a string.
pub fn from_text(text: &str) -> Result<EpochMillis, TimestampError> {
    let text = text.trim();
    if let Ok(number) = text.parse::<f64>() {
        return from_epoch_number(number);
    }
    text.parse::<Timestamp>()
        .map(|ts| ts.as_millisecond())
        .map_err(|_| TimestampError::Unrecognised(text.to_owned()))
}

/// `2026-11-25T10:00:00.123Z`.
pub fn format_rfc3339_millis(millis: EpochMillis) -> String {
    match Timestamp::from_millisecond(millis) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => format!("{:.3}", Timestamp::UNIX_EPOCH),
    }
}

pub fn now_millis() -> EpochMillis {
    Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MILLIS: EpochMillis = 1_764_064_800_123; // 2025-11-25T10:00:00.123Z

    #[test]
    fn epoch_units_by_magnitude() {
        assert_eq!(from_epoch_number(1_764_064_800.123), Ok(MILLIS));
        assert_eq!(from_epoch_number(MILLIS as f64), Ok(MILLIS));
        assert_eq!(from_epoch_number(MILLIS as f64 * 1e3), Ok(MILLIS));
        assert_eq!(from_epoch_number(MILLIS as f64 * 1e6), Ok(MILLIS));
        assert!(from_epoch_number(-1.0).is_err());
        assert!(from_epoch_number(f64::NAN).is_err());
    }

    #[test]
    fn rfc3339_variants() {
        assert_eq!(from_text("2025-11-25T10:00:00.123Z"), Ok(MILLIS));
        assert_eq!(from_text("2025-11-25T11:00:00.123+01:00"), Ok(MILLIS));
        assert_eq!(from_text("1764064800123"), Ok(MILLIS));
        assert_eq!(from_text(" 1764064800.123 "), Ok(MILLIS));
        assert!(matches!(
            from_text("yesterday"),
            Err(TimestampError::Unrecognised(_))
        ));
        assert!(
            from_text("2025-11-25 10:00").is_err(),
            "no offset: ambiguous local time"
        );
    }

    #[test]
    fn formats_with_milliseconds() {
        assert_eq!(format_rfc3339_millis(MILLIS), "2025-11-25T10:00:00.123Z");
        assert_eq!(
            format_rfc3339_millis(1_764_064_800_000),
            "2025-11-25T10:00:00.000Z"
        );
    }
}
