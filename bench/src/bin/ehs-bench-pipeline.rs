//! `ehs-bench-pipeline`: the load side of `scripts/bench-pipeline` (the whole-path benchmark).
//! It publishes meter messages over MQTT v5 from several connections at once and measures the
//! broker alone through a shared subscription.
//! The script does the rest (the database, the processes, the report); every subcommand prints
//! one JSON object on stdout.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ehs_bench::publisher::{publish, PublishPlan, PublishReport};
use ehs_bench::stack::Stack;
use ehs_bench::subscriber::Subscriber;
use ehs_bench::telemetry::{meter_payload, Fleet, METER_READINGS};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    about = "Load for scripts/bench-pipeline: MQTT publishers and a shared-subscription \
                   broker measurement (addresses from `scripts/pipeline env`)"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Load {
    /// Publishing MQTT connections; the messages and the rate are split evenly over them.
    #[arg(long, default_value_t = 4)]
    connections: u32,
    /// Messages in all (each carries three readings).
    #[arg(long)]
    messages: u64,
    /// Offered messages per second over all connections; 0 publishes as fast as acknowledged.
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// Devices per connection, published round-robin. With 1000 a device repeats at most every
    /// 50 ms at 20,000 msg/s per connection, so `ts` (milliseconds) never repeats for a device
    /// and every reading has its own primary key.
    #[arg(long, default_value_t = 1000)]
    devices: u32,
    /// QoS 1 messages each connection keeps awaiting PUBACK (HiveMQ caps it at its receive
    /// maximum).
    #[arg(long, default_value_t = 1000)]
    window: u16,
    /// Prefix of the homes: connection `i` publishes as home `<run>-<i>`.
    #[arg(long)]
    run: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish meter messages at QoS 1 to `ehs/<run>-<i>/<device>/telemetry`, the bridge's topics.
    Publish(Load),
    /// HiveMQ alone: publish to `bench/...` (no bridge subscribes there) and receive through a
    /// shared subscription with `--subscribers` members, as the bridge replicas do.
    Broker {
        #[command(flatten)]
        load: Load,
        #[arg(long, default_value_t = 2)]
        subscribers: u32,
        /// Receive maximum of each subscriber (the bridge's EHS_MQTT_RECEIVE_MAXIMUM).
        #[arg(long, default_value_t = 1000)]
        receive_maximum: u16,
    },
}

fn fleets(load: &Load, root: &str) -> Vec<Fleet> {
    (0..load.connections.max(1))
        .map(|i| {
            Fleet::new(format!("{}-{i}", load.run), "m", load.devices).with_root(root.to_owned())
        })
        .collect()
}

/// Publishes `load` from all connections at once; returns the reports of every connection.
async fn publish_all(stack: &Stack, load: &Load, fleets: &[Fleet]) -> Result<Vec<PublishReport>> {
    let connections = fleets.len() as u64;
    let mut tasks = Vec::new();
    for (i, fleet) in fleets.iter().enumerate() {
        let i = i as u64;
        // The first `messages % connections` connections take one message more.
        let count = load.messages / connections + u64::from(i < load.messages % connections);
        let rate = (load.rate > 0).then(|| (load.rate / connections as u32).max(1));
        let plan = PublishPlan {
            fleet: fleet.clone(),
            first_index: 0,
            count,
            qos: 1,
            rate_per_sec: rate,
            window: load.window,
            payload: meter_payload,
        };
        let stack = stack.clone();
        let client_id = format!("{}-pub-{i}", fleet.home);
        tasks.push(tokio::spawn(async move {
            publish(&stack, &client_id, plan).await
        }));
    }
    let mut reports = Vec::new();
    for task in tasks {
        reports.push(task.await.context("publisher task")??);
    }
    Ok(reports)
}

fn publish_summary(load: &Load, reports: &[PublishReport]) -> serde_json::Value {
    let published: u64 = reports.iter().map(|r| r.published).sum();
    let first = reports.iter().map(|r| r.started_at_ms).min().unwrap_or(0);
    let last = reports
        .iter()
        .map(|r| r.finished_at_ms)
        .max()
        .unwrap_or(first);
    let seconds = ((last - first) as f64 / 1000.0).max(1e-3);
    json!({
        "connections": reports.len(),
        "published": published,
        "readings": published * METER_READINGS,
        "asked_rate_msgs": load.rate,
        "first_publish_ms": first,
        "last_ack_ms": last,
        "offered_msgs_per_s": published as f64 / seconds,
        "offered_readings_per_s": (published * METER_READINGS) as f64 / seconds,
        "per_connection_msgs_per_s": reports.iter().map(PublishReport::rate).collect::<Vec<_>>(),
    })
}

async fn broker(stack: &Stack, load: &Load, subscribers: u32, receive_maximum: u16) -> Result<()> {
    let fleets = fleets(load, "bench");
    let group = format!("{}-share", load.run);
    let mut members = Vec::new();
    // One wildcard over all homes per member, as the bridge subscribes (`ehs/+/+/telemetry`).
    let everything = Fleet::new("+", "m", load.devices).with_root("bench");
    for member in 0..subscribers.max(1) {
        members.push(
            Subscriber::start_shared(
                stack,
                &format!("{}-sub-{member}", load.run),
                &group,
                everything.clone(),
                receive_maximum,
                load.messages,
                Duration::from_secs(5),
            )
            .await?,
        );
    }
    let reports = publish_all(stack, load, &fleets).await?;
    let mut received = 0;
    let mut per_member = Vec::new();
    let mut last_receive = None;
    for member in members {
        let report = member.finish().await?;
        received += report.received;
        per_member.push(report.received);
        last_receive = last_receive.max(report.last_at_ms);
    }
    let mut summary = publish_summary(load, &reports);
    let first = summary["first_publish_ms"].as_i64().unwrap_or(0);
    let last = last_receive.unwrap_or(first);
    let seconds = ((last - first) as f64 / 1000.0).max(1e-3);
    summary["received"] = json!(received);
    summary["received_per_member"] = json!(per_member);
    summary["last_receive_ms"] = json!(last);
    summary["msgs_per_s"] = json!(received as f64 / seconds);
    summary["readings_per_s"] = json!((received * METER_READINGS) as f64 / seconds);
    println!("{summary}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let stack = Stack::require_running(&root)?;
    match args.command {
        Command::Publish(load) => {
            let reports = publish_all(&stack, &load, &fleets(&load, "ehs")).await?;
            println!("{}", publish_summary(&load, &reports));
        }
        Command::Broker {
            load,
            subscribers,
            receive_maximum,
        } => broker(&stack, &load, subscribers, receive_maximum).await?,
    }
    Ok(())
}
