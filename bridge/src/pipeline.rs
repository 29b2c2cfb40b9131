//! One MQTT message in: readings (or one dead letter) out to Kafka, registered for ordered
//! acknowledgement before anything is produced.

use std::sync::Arc;
use std::time::Instant;

use ehs_contract::{headers, reading};
use rdkafka::message::{Header, OwnedHeaders};
use rumqttc::v5::mqttbytes::v5::Publish;
use rumqttc::v5::mqttbytes::QoS;

use crate::acks::{AckToken, Seq};
use crate::config::Config;
use crate::decode::{decode, DeadLetterReason, Decoded};
use crate::encode::{text_time, Encoder, Reading};
use crate::kafka::{self, BridgeProducer};
use crate::state::Shared;
use crate::timestamp::{now_millis, EpochMillis};
use crate::topic::TopicIds;

/// What the acknowledger needs to ack `publish`; None for QoS 0.
pub fn ack_token(publish: &Publish) -> Option<AckToken> {
    match publish.qos {
        QoS::AtMostOnce => None,
        qos => Some(AckToken {
            pkid: publish.pkid,
            qos,
        }),
    }
}

fn user_properties(publish: &Publish) -> &[(String, String)] {
    publish
        .properties
        .as_ref()
        .map(|p| p.user_properties.as_slice())
        .unwrap_or_default()
}

/// Bytes the message's user properties add to each of its Kafka records' headers.
pub fn user_property_bytes(publish: &Publish) -> usize {
    user_properties(publish)
        .iter()
        .map(|(name, value)| headers::USER_PROPERTY_PREFIX.len() + name.len() + value.len())
        .sum()
}

/// Decides what a message becomes, without side effects. `header_bytes`: see
/// [`user_property_bytes`].
pub fn classify<'t>(
    config: &Config,
    topic: &'t [u8],
    payload: &[u8],
    header_bytes: usize,
) -> Result<(TopicIds<'t>, Decoded), DeadLetterReason> {
    if payload.len() > config.max_payload_bytes {
        return Err(DeadLetterReason::Oversize);
    }
    if header_bytes > config.max_header_bytes {
        return Err(DeadLetterReason::OversizeHeaders);
    }
    let topic = std::str::from_utf8(topic).map_err(|_| DeadLetterReason::Unmapped)?;
    let ids = config
        .pattern
        .extract(topic)
        .ok_or(DeadLetterReason::Unmapped)?;
    let route = config
        .routes
        .iter()
        .find(|route| route.filter.matches(topic))
        .ok_or(DeadLetterReason::Unmapped)?;
    let decoded = decode(route.adapter, &route.fields, payload, ids.metric)?;
    // Each reading is a record carrying the message's headers: one message must not become an
    // unbounded number of them.
    if decoded.metrics.len() > config.max_readings_per_message {
        return Err(DeadLetterReason::TooManyReadings);
    }
    Ok((ids, decoded))
}

pub struct Processor {
    config: Arc<Config>,
    encoder: Encoder,
    producer: Arc<BridgeProducer>,
    shared: Arc<Shared>,
    value: Vec<u8>,
    key: String,
    header_name: String,
}

impl Processor {
    pub fn new(config: Arc<Config>, producer: Arc<BridgeProducer>, shared: Arc<Shared>) -> Self {
        Self {
            encoder: Encoder::new(config.encoding),
            config,
            producer,
            shared,
            value: Vec::with_capacity(512),
            key: String::with_capacity(64),
            header_name: String::with_capacity(64),
        }
    }

    /// Takes a message that already holds a place in the in-flight window.
    pub async fn process(&mut self, publish: &Publish) {
        let arrival = Instant::now();
        let arrival_ms = now_millis();
        self.shared.metrics.received.inc();
        let header_bytes = user_property_bytes(publish);
        match classify(&self.config, &publish.topic, &publish.payload, header_bytes) {
            Ok((ids, decoded)) => {
                self.produce_readings(publish, ids, decoded, arrival, arrival_ms)
                    .await
            }
            Err(reason) => {
                self.produce_dead_letter(publish, reason, header_bytes, arrival, arrival_ms)
                    .await
            }
        }
    }

    async fn produce_readings(
        &mut self,
        publish: &Publish,
        ids: TopicIds<'_>,
        decoded: Decoded,
        arrival: Instant,
        arrival_ms: EpochMillis,
    ) {
        let records = u32::try_from(decoded.metrics.len()).unwrap_or(u32::MAX);
        let seq = self
            .shared
            .tracker()
            .push(ack_token(publish), records, arrival);
        let arrival_text = text_time(arrival_ms);
        let time = decoded.device_time.unwrap_or(arrival_ms);
        let time_text = if self.encoder.needs_text_times() {
            text_time(time)
        } else {
            String::new()
        };
        // Every metric of a message shares the key: one device's readings, one partition.
        reading::write_record_key(&mut self.key, ids.home, ids.device);
        let mut shared_headers = Some(self.headers(publish, &arrival_text, true));
        let last = decoded.metrics.len().saturating_sub(1);
        for (index, (metric, value)) in decoded.metrics.iter().enumerate() {
            let reading = Reading {
                time,
                home_id: ids.home,
                device_id: ids.device,
                metric,
                value: *value,
                arrival_time: arrival_ms,
            };
            self.encoder
                .encode(&reading, (&time_text, &arrival_text), &mut self.value);
            let record_headers = if index == last {
                shared_headers.take().unwrap_or_default()
            } else {
                shared_headers.clone().unwrap_or_default()
            };
            let record = kafka::Outgoing {
                topic: &self.config.kafka_topic,
                key: self.key.as_bytes(),
                payload: &self.value,
                headers: record_headers,
                timestamp_ms: arrival_ms,
                seq,
            };
            if let Err(error) = kafka::send(&self.producer, record, &self.shared).await {
                self.enqueue_failed(seq, &error);
            }
        }
    }

    async fn produce_dead_letter(
        &mut self,
        publish: &Publish,
        reason: DeadLetterReason,
        header_bytes: usize,
        arrival: Instant,
        arrival_ms: EpochMillis,
    ) {
        let seq = self.shared.tracker().push(ack_token(publish), 1, arrival);
        self.shared.metrics.dead_lettered(reason).inc();
        tracing::debug!(reason = reason.label(), topic = %String::from_utf8_lossy(&publish.topic), "dead-lettering message");
        let arrival_text = text_time(arrival_ms);
        let oversize_headers = reason == DeadLetterReason::OversizeHeaders;
        let mut record_headers = self
            .headers(publish, &arrival_text, !oversize_headers)
            .insert(Header {
                key: headers::DEAD_LETTER_REASON,
                value: Some(reason.label()),
            });
        if oversize_headers {
            record_headers = record_headers.insert(Header {
                key: headers::ORIGINAL_HEADER_BYTES,
                value: Some(&header_bytes.to_string()),
            });
        }
        // A dead letter must fit in one Kafka record: oversize payloads keep their first
        // --max-payload-bytes and say how large they were.
        let payload = &publish.payload[..publish.payload.len().min(self.config.max_payload_bytes)];
        if payload.len() < publish.payload.len() {
            record_headers = record_headers.insert(Header {
                key: headers::ORIGINAL_PAYLOAD_BYTES,
                value: Some(&publish.payload.len().to_string()),
            });
        }
        let record = kafka::Outgoing {
            topic: &self.config.dead_letter_topic,
            key: &publish.topic,
            payload,
            headers: record_headers,
            timestamp_ms: arrival_ms,
            seq,
        };
        if let Err(error) = kafka::send(&self.producer, record, &self.shared).await {
            self.enqueue_failed(seq, &error);
        }
    }

    /// The bridge's own headers, then the user properties when `with_properties`.
    fn headers(
        &mut self,
        publish: &Publish,
        arrival_text: &str,
        with_properties: bool,
    ) -> OwnedHeaders {
        let properties = if with_properties {
            user_properties(publish)
        } else {
            &[]
        };
        let mut record_headers = OwnedHeaders::new_with_capacity(2 + properties.len())
            .insert(Header {
                key: headers::MQTT_TOPIC,
                value: Some(publish.topic.as_ref()),
            })
            .insert(Header {
                key: headers::ARRIVAL_TIME,
                value: Some(arrival_text),
            });
        for (name, value) in properties {
            self.header_name.clear();
            self.header_name.push_str(headers::USER_PROPERTY_PREFIX);
            self.header_name.push_str(name);
            record_headers = record_headers.insert(Header {
                key: &self.header_name,
                value: Some(value.as_str()),
            });
        }
        record_headers
    }

    fn enqueue_failed(&self, seq: Seq, error: &rdkafka::error::KafkaError) {
        tracing::error!(%error, "kafka refused a record locally; acknowledgements stop behind it");
        self.shared.metrics.delivery_failures.inc();
        if self.shared.tracker().failed(seq).head_ready {
            self.shared.head_ready.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(extra: &[&str]) -> Config {
        let mut argv = vec!["--max-payload-bytes", "64"];
        argv.extend_from_slice(extra);
        config_with(&argv)
    }

    fn config_with(extra: &[&str]) -> Config {
        let mut argv = crate::config::REQUIRED_ARGS.to_vec();
        argv.extend(["--mqtt-filters", "ehs/#"]);
        argv.extend_from_slice(extra);
        crate::config::Args::parse_from(argv)
            .validate()
            .expect("valid config")
    }

    #[test]
    fn routes_pick_the_adapter_first_match_wins() {
        let config = config(&[
            "--topic-pattern",
            "ehs/{home}/{device}/{metric}",
            "--payload-routes",
            "ehs/+/+/telemetry=nested-json,ehs/+/+/+=numeric",
        ]);
        let (ids, decoded) =
            classify(&config, b"ehs/h/d/telemetry", br#"{"data":{"p":1}}"#, 0).expect("nested");
        assert_eq!((ids.home, ids.device), ("h", "d"));
        assert_eq!(decoded.metrics, vec![("p".to_owned(), 1.0)]);
        let (_, decoded) = classify(&config, b"ehs/h/d/power_w", b"412.5", 0).expect("numeric");
        assert_eq!(decoded.metrics, vec![("power_w".to_owned(), 412.5)]);
    }

    #[test]
    fn dead_letter_reasons() {
        let config = config(&["--payload-routes", "ehs/+/+/telemetry=flat-json"]);
        let big = vec![b' '; 65];
        assert_eq!(
            classify(&config, b"ehs/h/d/telemetry", &big, 0).err(),
            Some(DeadLetterReason::Oversize)
        );
        assert_eq!(
            classify(&config, b"other/h/d/telemetry", b"{}", 0).err(),
            Some(DeadLetterReason::Unmapped)
        );
        assert_eq!(
            classify(&config, &[0xff, 0x2f], b"{}", 0).err(),
            Some(DeadLetterReason::Unmapped)
        );
        assert_eq!(
            classify(&config, b"ehs/h/d/telemetry", b"{", 0).err(),
            Some(DeadLetterReason::Unparseable)
        );
        assert_eq!(
            classify(&config, b"ehs/h/d/telemetry", br#"{"a":"b"}"#, 0).err(),
            Some(DeadLetterReason::NonNumeric)
        );
        assert!(classify(&config, b"ehs/h/d/telemetry", br#"{"a":1}"#, 0).is_ok());
    }

    #[test]
    fn topic_matching_the_pattern_but_no_route_is_unmapped() {
        let config = config(&["--payload-routes", "ehs/+/+/status=flat-json"]);
        assert_eq!(
            classify(&config, b"ehs/h/d/telemetry", br#"{"a":1}"#, 0).err(),
            Some(DeadLetterReason::Unmapped)
        );
    }

    /// One 64 KiB payload of one-digit fields: before the cap it became 6,663 records, each
    /// carrying every user property (≈486 MiB to Kafka with 64 KiB of properties).
    fn wide_payload() -> String {
        let fields: Vec<String> = (0..6_663).map(|i| format!("\"m{i}\":0")).collect();
        format!("{{{}}}", fields.join(","))
    }

    #[test]
    fn fan_out_is_capped() {
        let config = config_with(&[]);
        let payload = wide_payload();
        assert!(payload.len() <= 65_536);
        assert_eq!(
            classify(&config, b"ehs/h/d/telemetry", payload.as_bytes(), 0).err(),
            Some(DeadLetterReason::TooManyReadings)
        );
        let three = br#"{"power_w":1,"energy_kwh":2,"voltage_v":3}"#;
        let capped = config_with(&["--max-readings-per-message", "2"]);
        assert_eq!(
            classify(&capped, b"ehs/h/d/telemetry", three, 0).err(),
            Some(DeadLetterReason::TooManyReadings)
        );
        // The cap counts selected fields only.
        let selected = config_with(&[
            "--max-readings-per-message",
            "2",
            "--payload-routes",
            "#=flat-json;exclude=voltage_v",
        ]);
        let (_, decoded) = classify(&selected, b"ehs/h/d/telemetry", three, 0).expect("two");
        assert_eq!(decoded.metrics.len(), 2);
    }

    #[test]
    fn header_bytes_are_capped() {
        let mut publish = Publish::new("ehs/h/d/telemetry", QoS::AtLeastOnce, "{\"p\":1}", None);
        let properties: Vec<(String, String)> = (0..1024)
            .map(|i| (format!("{i:032}"), "v".repeat(32)))
            .collect();
        publish.properties = Some(rumqttc::v5::mqttbytes::v5::PublishProperties {
            user_properties: properties,
            ..Default::default()
        });
        let bytes = user_property_bytes(&publish);
        assert_eq!(bytes, 1024 * (headers::USER_PROPERTY_PREFIX.len() + 64));
        let config = config(&[]);
        assert_eq!(
            classify(&config, &publish.topic, &publish.payload, bytes).err(),
            Some(DeadLetterReason::OversizeHeaders)
        );
        let roomy = config_with(&["--max-header-bytes", "65536"]);
        assert!(classify(&roomy, &publish.topic, &publish.payload, 1_024 * 42).is_ok());
        assert_eq!(
            classify(&roomy, &publish.topic, &publish.payload, 65_537).err(),
            Some(DeadLetterReason::OversizeHeaders)
        );
        assert!(classify(&config, &publish.topic, &publish.payload, 4096).is_ok());
        assert_eq!(
            classify(&config, &publish.topic, &publish.payload, 4097).err(),
            Some(DeadLetterReason::OversizeHeaders)
        );
    }

    #[test]
    fn qos0_needs_no_ack() {
        let mut publish = Publish::new("t", QoS::AtMostOnce, "x", None);
        assert_eq!(ack_token(&publish), None);
        publish.qos = QoS::AtLeastOnce;
        publish.pkid = 42;
        assert_eq!(
            ack_token(&publish),
            Some(AckToken {
                pkid: 42,
                qos: QoS::AtLeastOnce
            })
        );
    }
}
