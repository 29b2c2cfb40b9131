//! Wiring: producer, HTTP server, Kafka probe, MQTT loop and acknowledger; then the SIGTERM drain.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::AsyncClient;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::config::Config;
use crate::kafka::{self, KafkaSetupError};
use crate::mqtt::{self, MqttLoop};
use crate::pipeline::Processor;
use crate::state::Shared;

const KAFKA_PROBE_INTERVAL: Duration = Duration::from_secs(5);
const KAFKA_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Kafka(#[from] KafkaSetupError),
    #[error("cannot listen for HTTP on {address}")]
    Listen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install the signal handler")]
    Signal(#[source] std::io::Error),
    #[error("the MQTT loop stopped unexpectedly")]
    LoopStopped,
    #[error("the acknowledger stopped unexpectedly")]
    AcknowledgerStopped,
    #[error("kafka did not confirm every record before the drain deadline")]
    FlushIncomplete(#[source] rdkafka::error::KafkaError),
}

/// Runs the bridge until SIGTERM or SIGINT, then drains within `config.drain_timeout`.
pub async fn run(config: Config) -> Result<(), RunError> {
    let config = Arc::new(config);
    let shared = Arc::new(Shared::new(config.max_in_flight));
    let producer = kafka::create_producer(&config, Arc::clone(&shared))?;

    let listener = TcpListener::bind(config.http_listen)
        .await
        .map_err(|source| RunError::Listen {
            address: config.http_listen,
            source,
        })?;
    tracing::info!(address = %config.http_listen, "serving probes and metrics");
    tokio::spawn(crate::http::serve(
        listener,
        Arc::clone(&shared),
        crate::http::Limits::default(),
    ));
    tokio::spawn(probe_kafka(
        Arc::clone(&producer),
        vec![config.kafka_topic.clone(), config.dead_letter_topic.clone()],
        Arc::clone(&shared),
    ));

    let (client, eventloop) = AsyncClient::new(
        mqtt::options(&config),
        usize::from(config.receive_maximum) + 256,
    );
    let reconnect_requested = Arc::new(AtomicBool::new(false));
    let processor = Processor::new(
        Arc::clone(&config),
        Arc::clone(&producer),
        Arc::clone(&shared),
    );
    let mqtt_loop = MqttLoop::new(
        Arc::clone(&config),
        client.clone(),
        eventloop,
        Arc::clone(&shared),
        processor,
        Arc::clone(&reconnect_requested),
    );
    let waker = mqtt_loop.waker();
    let mut acknowledger = tokio::spawn(mqtt::run_acknowledger(
        Arc::clone(&shared),
        client,
        reconnect_requested,
        waker.clone(),
    ));
    let mut loop_task = tokio::spawn(mqtt_loop.run(config.drain_timeout));

    let mut terminate = signal(SignalKind::terminate()).map_err(RunError::Signal)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(RunError::Signal)?;
    let signal_name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
        _ = &mut loop_task => {
            shared.task_failed();
            return Err(RunError::LoopStopped);
        }
        _ = &mut acknowledger => {
            shared.task_failed();
            return Err(RunError::AcknowledgerStopped);
        }
    };
    let drain_started = tokio::time::Instant::now();
    tracing::info!(signal = signal_name, "shutting down");
    shared.start_draining();
    waker.wake();

    // The loop enforces the drain deadline itself; this bound only guards against a hang.
    if tokio::time::timeout(config.drain_timeout, &mut loop_task)
        .await
        .is_err()
    {
        tracing::error!("MQTT loop did not finish its drain in time");
        loop_task.abort();
    }
    acknowledger.abort();
    let left = config
        .drain_timeout
        .saturating_sub(drain_started.elapsed())
        .max(Duration::from_millis(500));
    kafka::flush(&producer, left)
        .await
        .map_err(RunError::FlushIncomplete)?;
    let in_flight = shared.tracker().len();
    tracing::info!(in_flight, elapsed = ?drain_started.elapsed(), "drained");
    Ok(())
}

async fn probe_kafka(
    producer: Arc<kafka::BridgeProducer>,
    topics: Vec<String>,
    shared: Arc<Shared>,
) {
    let mut was_up = None;
    loop {
        let up = kafka::probe(&producer, &topics, KAFKA_PROBE_TIMEOUT).await;
        if up {
            shared.kafka_answered();
        } else {
            shared.kafka_silent();
        }
        if was_up != Some(up) {
            if up {
                tracing::info!("kafka answers and both topics exist");
            } else {
                tracing::warn!(
                    "kafka unusable: no metadata answer, or a topic is missing or forbidden"
                );
            }
            was_up = Some(up);
        }
        tokio::time::sleep(KAFKA_PROBE_INTERVAL).await;
    }
}
