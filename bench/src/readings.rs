//! Reading the bridge's output records back: which published message a record came from.
//!
//! The bridge writes one record per metric (`time`, `home_id`, `device_id`, `metric`, `value`,
//! `arrival_time`), as plain JSON with RFC 3339 times or as the Kafka Connect JsonConverter
//! envelope with epoch-millisecond times, and copies MQTT v5 user properties into headers.

use ehs_contract::headers;
use serde_json::Value;

use crate::kafka::Record;
use crate::telemetry::{Fleet, MessageId, SEQ_PROPERTY};

/// The one metric the harness's payloads carry.
pub const METRIC: &str = "power_w";

/// A bridge output record traced back to the message it was made from.
#[derive(Debug, Clone, Copy)]
pub struct TracedReading {
    pub id: MessageId,
    pub device_ts_ms: Option<i64>,
}

/// Traces a readings record back to its published message: the device from `device_id`, the
/// sequence number from the user-property header. Records of other fleets give `None`.
pub fn decode_reading(record: &Record, fleet: &Fleet) -> Option<TracedReading> {
    let value: Value = serde_json::from_slice(&record.payload).ok()?;
    let reading = match (value.get("schema"), value.get("payload")) {
        (Some(_), Some(payload)) => payload,
        _ => &value,
    };
    if reading.get("metric")?.as_str()? != METRIC {
        return None;
    }
    let device = fleet.parse_device(reading.get("device_id")?.as_str()?)?;
    let seq_header = format!("{}{SEQ_PROPERTY}", headers::USER_PROPERTY_PREFIX);
    let seq = record.header_str(&seq_header)?.parse().ok()?;
    let device_ts_ms = match reading.get("time")? {
        Value::Number(millis) => millis.as_i64(),
        Value::String(text) => parse_rfc3339_utc_millis(text),
        _ => None,
    };
    Some(TracedReading {
        id: MessageId { device, seq },
        device_ts_ms,
    })
}

/// `2026-11-25T10:00:00.123Z` → milliseconds since the epoch (UTC `Z` only, as the bridge
/// writes it).
pub fn parse_rfc3339_utc_millis(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock_parts = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (
        clock_parts.next()??,
        clock_parts.next()??,
        clock_parts.next()??,
    );
    let millis: i64 = format!("{fraction:0<3}").get(..3)?.parse().ok()?;
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_bridges_time_format() {
        assert_eq!(
            parse_rfc3339_utc_millis("1970-01-01T00:00:00.000Z"),
            Some(0)
        );
        assert_eq!(
            parse_rfc3339_utc_millis("2025-11-25T10:00:00.250Z"),
            Some(1_764_064_800_250)
        );
        assert_eq!(
            parse_rfc3339_utc_millis("2025-11-25T10:00:00Z"),
            Some(1_764_064_800_000)
        );
        assert_eq!(parse_rfc3339_utc_millis("2025-11-25 10:00:00"), None);
    }

    #[test]
    fn traces_plain_and_connect_records() {
        let fleet = Fleet::new("h", "d", 10);
        let record = |payload: &str| Record {
            partition: 0,
            offset: 0,
            key: Some("d00003".into()),
            payload: payload.as_bytes().to_vec(),
            headers: vec![("mqtt.user.seq".into(), b"42".to_vec())],
            timestamp_ms: None,
            log_append_time: false,
            consumed_at_ms: 0,
        };
        let plain = record(
            r#"{"time":"2025-11-25T10:00:00.250Z","home_id":"h","device_id":"d00003","metric":"power_w","value":1.0,"arrival_time":"2025-11-25T10:00:00.251Z"}"#,
        );
        let traced = decode_reading(&plain, &fleet).expect("plain JSON reading");
        assert_eq!(
            (traced.id, traced.device_ts_ms),
            (MessageId { device: 3, seq: 42 }, Some(1_764_064_800_250))
        );
        let connect = record(
            r#"{"schema":{},"payload":{"time":5,"home_id":"h","device_id":"d00003","metric":"power_w","value":1.0,"arrival_time":6}}"#,
        );
        assert_eq!(
            decode_reading(&connect, &fleet).map(|t| t.device_ts_ms),
            Some(Some(5))
        );
    }
}
