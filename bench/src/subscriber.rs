//! A plain MQTT v5 subscriber: the broker's own ceiling, i.e. what a consumer that does nothing
//! but receive (and acknowledge) can take from Mosquitto on this machine.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ClientError, ConnectionError, Event, MqttOptions};
use tokio::task::JoinHandle;

use crate::stack::Stack;
use crate::telemetry::{now_ms, Fleet, MessageId, SEQ_PROPERTY};

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("subscriber `{client_id}` lost its MQTT connection")]
    Connection {
        client_id: String,
        #[source]
        source: ConnectionError,
    },
    #[error("subscriber `{client_id}` could not send SUBSCRIBE")]
    Request {
        client_id: String,
        #[source]
        source: ClientError,
    },
    #[error("subscriber `{client_id}` got no SUBACK within {0:?}", WAIT_FOR_SUBACK)]
    NoSubAck { client_id: String },
    #[error("subscriber task failed: {0}")]
    Task(String),
}

const WAIT_FOR_SUBACK: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct SubscribeReport {
    pub received: u64,
    pub distinct: u64,
    pub first_at_ms: Option<i64>,
    pub last_at_ms: Option<i64>,
}

struct Subscription {
    filter: String,
    qos: u8,
    receive_maximum: u16,
}

/// A running subscriber; [`Subscriber::finish`] waits for its result.
pub struct Subscriber {
    task: JoinHandle<Result<SubscribeReport, SubscribeError>>,
}

impl Subscriber {
    /// Subscribes to the fleet's filter and returns once the broker confirmed it, so nothing
    /// published afterwards is missed. It stops after `expected` distinct messages or after
    /// `idle` without any message.
    pub async fn start(
        stack: &Stack,
        client_id: &str,
        fleet: Fleet,
        qos: u8,
        receive_maximum: u16,
        expected: u64,
        idle: Duration,
    ) -> Result<Self, SubscribeError> {
        let subscription = Subscription {
            filter: fleet.filter(),
            qos,
            receive_maximum,
        };
        Self::subscribe(stack, client_id, fleet, subscription, expected, idle).await
    }

    /// One member of the shared subscription `$share/<group>/<fleet filter>` at QoS 1, as the
    /// bridge subscribes: the broker spreads the fleet's messages over the group's members.
    pub async fn start_shared(
        stack: &Stack,
        client_id: &str,
        group: &str,
        fleet: Fleet,
        receive_maximum: u16,
        expected: u64,
        idle: Duration,
    ) -> Result<Self, SubscribeError> {
        let subscription = Subscription {
            filter: format!("$share/{group}/{}", fleet.filter()),
            qos: 1,
            receive_maximum,
        };
        Self::subscribe(stack, client_id, fleet, subscription, expected, idle).await
    }

    async fn subscribe(
        stack: &Stack,
        client_id: &str,
        fleet: Fleet,
        subscription: Subscription,
        expected: u64,
        idle: Duration,
    ) -> Result<Self, SubscribeError> {
        let Subscription {
            filter,
            qos,
            receive_maximum,
        } = subscription;
        let mut options = MqttOptions::new(client_id, stack.mqtt_host.clone(), stack.mqtt_port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_start(true)
            .set_receive_maximum(Some(receive_maximum.max(1)));
        let (client, mut event_loop) = AsyncClient::new(options, 64);
        let level = if qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        client
            .subscribe(filter, level)
            .await
            .map_err(|source| SubscribeError::Request {
                client_id: client_id.to_owned(),
                source,
            })?;

        let subscribed = tokio::time::timeout(WAIT_FOR_SUBACK, async {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(source) => {
                        return Err(SubscribeError::Connection {
                            client_id: client_id.to_owned(),
                            source,
                        })
                    }
                }
            }
        })
        .await;
        match subscribed {
            Ok(result) => result?,
            Err(_) => {
                return Err(SubscribeError::NoSubAck {
                    client_id: client_id.to_owned(),
                })
            }
        }

        let client_id = client_id.to_owned();
        let task = tokio::spawn(async move {
            let _client = client;
            let mut seen: HashSet<MessageId> = HashSet::with_capacity(expected as usize);
            let mut report = SubscribeReport {
                received: 0,
                distinct: 0,
                first_at_ms: None,
                last_at_ms: None,
            };
            while (seen.len() as u64) < expected {
                let deadline = Instant::now() + idle;
                let event = match tokio::time::timeout_at(deadline.into(), event_loop.poll()).await
                {
                    Ok(event) => event,
                    Err(_) => break,
                };
                match event {
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let at = now_ms();
                        report.first_at_ms.get_or_insert(at);
                        report.last_at_ms = Some(at);
                        report.received += 1;
                        let device = std::str::from_utf8(&publish.topic)
                            .ok()
                            .and_then(|topic| topic.split('/').nth(2))
                            .and_then(|name| fleet.parse_device(name));
                        let seq = publish.properties.as_ref().and_then(|p| {
                            p.user_properties
                                .iter()
                                .find(|(k, _)| k == SEQ_PROPERTY)?
                                .1
                                .parse()
                                .ok()
                        });
                        if let (Some(device), Some(seq)) = (device, seq) {
                            seen.insert(MessageId { device, seq });
                        }
                    }
                    Ok(_) => {}
                    Err(source) => return Err(SubscribeError::Connection { client_id, source }),
                }
            }
            report.distinct = seen.len() as u64;
            Ok(report)
        });
        Ok(Self { task })
    }

    pub async fn finish(self) -> Result<SubscribeReport, SubscribeError> {
        self.task
            .await
            .map_err(|join| SubscribeError::Task(join.to_string()))?
    }
}
