//! What arrived in Kafka compared with what was published: loss, duplicates, per-device order
//! and end-to-end latency.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::kafka::Record;
use crate::readings::decode_reading;
use crate::telemetry::{Fleet, MessageId};

/// One published message found in Kafka.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub id: MessageId,
    pub partition: i32,
    pub offset: i64,
    /// The device's own timestamp carried through the bridge (the publish time).
    pub device_ts_ms: Option<i64>,
    /// The record's Kafka timestamp.
    pub kafka_ts_ms: Option<i64>,
    pub log_append_time: bool,
}

/// Decodes the fleet's readings among `records`; records of other fleets are skipped.
pub fn deliveries(records: &[Record], fleet: &Fleet) -> Vec<Delivery> {
    records
        .iter()
        .filter_map(|record| {
            let reading = decode_reading(record, fleet)?;
            Some(Delivery {
                id: reading.id,
                partition: record.partition,
                offset: record.offset,
                device_ts_ms: reading.device_ts_ms,
                kafka_ts_ms: record.timestamp_ms,
                log_append_time: record.log_append_time,
            })
        })
        .collect()
}

/// Number of distinct published messages among `deliveries`.
pub fn distinct(deliveries: &[Delivery]) -> usize {
    deliveries
        .iter()
        .map(|d| d.id)
        .collect::<HashSet<_>>()
        .len()
}

#[derive(Debug, Clone)]
pub struct DeliveryCheck {
    pub expected: u64,
    pub records: u64,
    pub distinct: u64,
    /// Records beyond the first of each message (at-least-once redeliveries).
    pub duplicates: u64,
    pub missing: Vec<MessageId>,
    /// Messages in Kafka that were never expected (a harness or bridge bug).
    pub unexpected: u64,
    /// First deliveries that came after a later message of the same device.
    pub order_violations: u64,
    /// Devices whose records landed in more than one partition (the key must pin a device).
    pub devices_split_across_partitions: u64,
}

impl DeliveryCheck {
    pub fn lost(&self) -> u64 {
        self.missing.len() as u64
    }

    /// Missing messages grouped by device, for failure messages: `device: seq, seq, …`.
    pub fn missing_summary(&self, limit: usize) -> String {
        let mut by_device: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for id in &self.missing {
            by_device.entry(id.device).or_default().push(id.seq);
        }
        by_device
            .iter()
            .take(limit)
            .map(|(device, seqs)| format!("device {device}: seq {seqs:?}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl std::fmt::Display for DeliveryCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "expected {}, records {}, distinct {}, lost {}, duplicates {}, unexpected {}, order violations {}, devices split across partitions {}",
            self.expected,
            self.records,
            self.distinct,
            self.lost(),
            self.duplicates,
            self.unexpected,
            self.order_violations,
            self.devices_split_across_partitions
        )
    }
}

/// Compares `deliveries` with the messages that were published.
pub fn check(
    deliveries: &[Delivery],
    expected: impl IntoIterator<Item = MessageId>,
) -> DeliveryCheck {
    let expected: HashSet<MessageId> = expected.into_iter().collect();
    let mut counts: HashMap<MessageId, u64> = HashMap::with_capacity(expected.len());
    for delivery in deliveries {
        *counts.entry(delivery.id).or_default() += 1;
    }
    let mut missing: Vec<MessageId> = expected
        .iter()
        .filter(|id| !counts.contains_key(id))
        .copied()
        .collect();
    missing.sort();
    let duplicates = counts.values().map(|n| n - 1).sum();
    let unexpected = counts.keys().filter(|id| !expected.contains(id)).count() as u64;

    let mut by_device: HashMap<u32, Vec<&Delivery>> = HashMap::new();
    for delivery in deliveries {
        by_device
            .entry(delivery.id.device)
            .or_default()
            .push(delivery);
    }
    let mut order_violations = 0;
    let mut split = 0;
    for records in by_device.values_mut() {
        let partitions: HashSet<i32> = records.iter().map(|d| d.partition).collect();
        if partitions.len() > 1 {
            split += 1;
        }
        records.sort_by_key(|d| (d.partition, d.offset));
        let mut seen = HashSet::new();
        let mut highest: Option<u64> = None;
        for delivery in records.iter() {
            if !seen.insert(delivery.id.seq) {
                continue;
            }
            if highest.is_some_and(|h| delivery.id.seq < h) {
                order_violations += 1;
            }
            highest = highest.max(Some(delivery.id.seq));
        }
    }

    DeliveryCheck {
        expected: expected.len() as u64,
        records: deliveries.len() as u64,
        distinct: counts.len() as u64 - unexpected,
        duplicates,
        missing,
        unexpected,
        order_violations,
        devices_split_across_partitions: split,
    }
}

/// End-to-end latency in milliseconds of each first delivery: from the device timestamp
/// (publish time) to the Kafka record timestamp, which is the broker's append time on topics
/// created with `log_append_time`.
pub fn latencies_ms(deliveries: &[Delivery]) -> Vec<i64> {
    let mut seen = HashSet::new();
    let mut latencies: Vec<i64> = deliveries
        .iter()
        .filter(|d| seen.insert(d.id))
        .filter_map(|d| Some(d.kafka_ts_ms? - d.device_ts_ms?))
        .collect();
    latencies.sort_unstable();
    latencies
}

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
pub fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Latest Kafka timestamp among `deliveries`: when the last message was in Kafka.
pub fn last_kafka_ts_ms(deliveries: &[Delivery]) -> Option<i64> {
    deliveries.iter().filter_map(|d| d.kafka_ts_ms).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(device: u32, seq: u64, offset: i64) -> Delivery {
        Delivery {
            id: MessageId { device, seq },
            partition: 0,
            offset,
            device_ts_ms: Some(1000),
            kafka_ts_ms: Some(1000 + offset),
            log_append_time: true,
        }
    }

    #[test]
    fn finds_loss_duplicates_and_reordering() {
        let fleet = Fleet::new("h", "d", 2);
        let got = [
            delivery(0, 0, 0),
            delivery(0, 2, 1),
            delivery(0, 1, 2),
            delivery(0, 2, 3),
            delivery(1, 0, 4),
        ];
        let result = check(&got, fleet.ids(0, 6));
        assert_eq!(
            result.missing,
            vec![
                MessageId { device: 1, seq: 1 },
                MessageId { device: 1, seq: 2 }
            ]
        );
        assert_eq!(result.duplicates, 1);
        assert_eq!(result.order_violations, 1);
        assert_eq!(result.distinct, 4);
        assert_eq!(result.unexpected, 0);
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(quantile(&values, 0.5), Some(50));
        assert_eq!(quantile(&values, 0.99), Some(99));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
