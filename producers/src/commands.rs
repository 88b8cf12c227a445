//! Runs a parsed [`Cli`]: the store and relay calls behind each command, and their output.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use edison_common::kafka::{create, ensure_topic, record_contract, registry_topic, topic_configs, KafkaArgs, TopicSpec, TopicStatus};
use edison_schemas::OrderStatus;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use tracing::warn;

use crate::cli::{Cli, InFlight, SalesCommand, TopicCommand};
use crate::domain::{Amendment, NewOrder, OrderRecord};
use crate::relay::{self, Relay, RelayOptions, RelayReport, RelayStop};
use crate::simulate::{simulate, SimulateOptions, SimulateReport};
use crate::store::Store;

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// Topic configs `topic describe` prints.
const KEY_CONFIGS: [&str; 7] = [
    "cleanup.policy",
    "retention.ms",
    "min.compaction.lag.ms",
    "delete.retention.ms",
    "segment.ms",
    "min.insync.replicas",
    "max.message.bytes",
];

/// Runs one `sales` command, printing its result to stdout.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli { kafka, database_url, json, delivery_timeout, command } = cli;
    let relay_options = |in_flight: Option<&InFlight>| RelayOptions {
        max_in_flight: in_flight.map_or(RelayOptions::default().max_in_flight, |f| f.concurrency as usize),
        delivery_timeout: Duration::from_secs(delivery_timeout),
        ..RelayOptions::default()
    };
    if let SalesCommand::Topic(command) = command {
        return run_topic(&kafka, command, json).await;
    }
    let store = if command.only_reads() {
        Store::open_existing(&database_url).await
    } else {
        Store::open(&database_url).await
    };
    let store = store.context("cannot open the Sales store")?;
    let (done, record) = match command {
        SalesCommand::Place { model, customer_name, email, address } => {
            ("placed", store.place(&NewOrder { model, customer_name, email, address }).await?)
        }
        SalesCommand::Pay { order_id } => ("paid", store.pay(order_id).await?),
        SalesCommand::Amend { order_id, address, model } => {
            ("amended", store.amend(order_id, Amendment { address, model }).await?)
        }
        SalesCommand::Cancel { order_id, reason } => ("cancelled", store.cancel(order_id, reason).await?),
        SalesCommand::Erase { order_id } => ("erased", store.erase(order_id).await?),
        SalesCommand::Show { order_id } => return show(&store, order_id, json).await,
        SalesCommand::List { status, limit } => return list(&store, status, limit, json).await,
        SalesCommand::Relay { follow: true, poll_ms, in_flight } => {
            let published = relay::follow(&kafka, &relay_options(Some(&in_flight)), &store, Duration::from_millis(poll_ms)).await?;
            println!("stopped after publishing {}", events(published));
            return Ok(());
        }
        SalesCommand::Relay { follow: false, poll_ms, in_flight } => {
            let relay = Relay::new(&kafka, relay_options(Some(&in_flight)))?;
            return run_relay(&store, &relay, Duration::from_millis(poll_ms), json).await;
        }
        SalesCommand::Simulate { orders, seed, rate, start, days, no_relay, in_flight } => {
            let options = SimulateOptions {
                orders,
                seed,
                rate,
                max_in_flight: in_flight.concurrency as usize,
                start_ms: start,
                days,
                progress: !json,
            };
            let relay = (!no_relay).then(|| Relay::new(&kafka, relay_options(Some(&in_flight)))).transpose()?;
            let report = simulate(&store, relay.as_ref(), &options).await?;
            print_simulation(&report, &kafka.topic, json)?;
            return Ok(());
        }
        SalesCommand::Topic(_) => unreachable!("handled above"),
    };
    // The change is committed; delivering it is best effort; what is not delivered stays queued.
    let relayed = async { Relay::new(&kafka, relay_options(None))?.drain(&store).await };
    let report = match relayed.await {
        Ok(report) => report,
        Err(error) => {
            warn!(%error, "relay failed");
            let queued = store.queued().await?;
            RelayReport { published: 0, queued, stopped: Some(RelayStop::Failed(error.to_string())) }
        }
    };
    if json {
        println!("{}", json!({ "order": record, "relay": report }));
    } else {
        println!("{done} {}", summary(&record));
        println!("{}", relay_line(&report, &kafka.topic));
    }
    Ok(())
}

async fn show(store: &Store, id: uuid::Uuid, json: bool) -> anyhow::Result<()> {
    let record = store.get(id).await?;
    let events = store.outbox_entries(id).await?;
    if json {
        println!("{}", json!({ "order": record, "events": events }));
        return Ok(());
    }
    let order = &record.order;
    println!("{}", summary(&record));
    let customer = &order.customer;
    if record.erased_at.is_some() {
        println!("  customer   personal data erased ({})", customer.customer_id);
    } else {
        println!("  customer   {} <{}> ({})", customer.name, customer.email, customer.customer_id);
        println!("  ship to    {}", customer.shipping_address);
    }
    println!("  batteries  {}", order.batteries);
    println!("  placed     {}", timestamp(order.placed_at));
    for (label, at) in [("paid", order.paid_at), ("cancelled", order.cancelled_at), ("erased", record.erased_at)] {
        if let Some(at) = at {
            println!("  {label:<10} {}", timestamp(at));
        }
    }
    if let Some(reason) = &order.cancel_reason {
        println!("  reason     {reason}");
    }
    println!("  events:");
    for event in events {
        let state = if event.published { "published" } else { "queued" };
        println!("    #{:<3} {:<10} {}  {}", event.sequence, event.event_type, timestamp(event.created_at), state);
    }
    Ok(())
}

async fn list(store: &Store, status: Option<OrderStatus>, limit: u32, json: bool) -> anyhow::Result<()> {
    let orders = store.list(status, limit).await?;
    if json {
        println!("{}", serde_json::to_string(&orders)?);
        return Ok(());
    }
    for record in &orders {
        let order = &record.order;
        let status = if record.erased_at.is_some() { "erased" } else { order.status.as_str() };
        println!(
            "{}  {:<9}  {}  {:>14}  {}  {}",
            record.id,
            status,
            order.model,
            order.price,
            timestamp(order.placed_at),
            order.customer.name
        );
    }
    if orders.is_empty() {
        println!("no orders");
    }
    Ok(())
}

async fn run_relay(store: &Store, relay: &Relay, poll: Duration, json: bool) -> anyhow::Result<()> {
    // A relay killed mid-drain leaves its lease until it expires; wait for it rather than fail.
    let report = loop {
        let report = relay.drain(store).await?;
        if report.stopped != Some(RelayStop::Busy) {
            break report;
        }
        tokio::time::sleep(poll).await;
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", relay_line(&report, relay.topic()));
    }
    match report.stopped {
        Some(stop) => bail!("{stop}; {} still queued", events(report.queued)),
        None => Ok(()),
    }
}

fn print_simulation(report: &SimulateReport, topic: &str, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!(
        "simulated {} orders: {} events in {:.2} s ({:.0} events/s)",
        report.orders, report.events, report.elapsed_secs, report.events_per_sec
    );
    for (event_type, count) in &report.by_type {
        println!("  {event_type:<10} {count:>9}");
    }
    let relayed = RelayReport {
        published: report.published,
        queued: report.queued,
        stopped: report.relay_stopped.clone(),
    };
    println!("{}", relay_line(&relayed, topic));
    Ok(())
}

async fn run_topic(kafka: &KafkaArgs, command: TopicCommand, json: bool) -> anyhow::Result<()> {
    let config = kafka.client_config();
    let topic = &kafka.topic;
    match command {
        TopicCommand::Create { partitions, replication_factor } => {
            let spec = TopicSpec::orders(topic, partitions).replicated(replication_factor);
            let status = ensure_topic(&config, &spec).await.with_context(|| format!("cannot create topic {topic}"))?;
            let created = status == TopicStatus::Created;
            let contract = record_contract(kafka, &relay::writer_schemas()?).await.with_context(|| format!("cannot record the contract of topic {topic}"))?;
            let shape = format!("{} partitions, replication factor {}", contract.partitions, contract.replication_factor);
            if json {
                println!(
                    "{}",
                    json!({ "topic": topic, "created": created, "partitions": contract.partitions, "replication_factor": contract.replication_factor })
                );
            } else if created {
                println!("created topic {topic}: {shape}, recorded in {}", registry_topic(topic));
            } else {
                println!("topic {topic} already exists with the required configs: {shape}");
            }
        }
        TopicCommand::Describe => {
            let description = describe(kafka).await?;
            if json {
                println!("{}", serde_json::to_string(&description)?);
            } else {
                println!("topic {}: {} partitions", description.topic, description.partitions.len());
                for p in &description.partitions {
                    println!(
                        "  partition {:>3}  leader {:>3}  replicas {:?}  isr {:?}  offsets {}..{}",
                        p.partition, p.leader, p.replicas, p.isr, p.low, p.high
                    );
                }
                for (key, value) in &description.configs {
                    println!("  {key} = {value}");
                }
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct TopicDescription {
    topic: String,
    partitions: Vec<PartitionDescription>,
    configs: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct PartitionDescription {
    partition: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    low: i64,
    high: i64,
}

async fn describe(kafka: &KafkaArgs) -> anyhow::Result<TopicDescription> {
    let config = kafka.client_config();
    let consumer: BaseConsumer = create(&config)?;
    let topic = kafka.topic.clone();
    // Metadata and watermarks are blocking librdkafka calls.
    let partitions = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<PartitionDescription>> {
        let metadata = consumer.fetch_metadata(Some(&topic), METADATA_TIMEOUT)?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            bail!("the broker did not describe topic {topic}");
        };
        if let Some(error) = found.error() {
            bail!("topic {topic}: {:?}; create it with `sales topic create`", rdkafka::error::RDKafkaErrorCode::from(error));
        }
        found
            .partitions()
            .iter()
            .map(|p| {
                let (low, high) = consumer.fetch_watermarks(&topic, p.id(), METADATA_TIMEOUT)?;
                Ok(PartitionDescription {
                    partition: p.id(),
                    leader: p.leader(),
                    replicas: p.replicas().to_vec(),
                    isr: p.isr().to_vec(),
                    low,
                    high,
                })
            })
            .collect()
    })
    .await??;
    let all = topic_configs(&config, &kafka.topic).await?;
    let configs = KEY_CONFIGS
        .iter()
        .filter_map(|&key| Some((key.to_owned(), all.get(key)?.clone())))
        .collect();
    Ok(TopicDescription { topic: kafka.topic.clone(), partitions, configs })
}

fn summary(record: &OrderRecord) -> String {
    let order = &record.order;
    let status = if record.erased_at.is_some() { "erased" } else { order.status.as_str() };
    format!(
        "order {} [{status}]: {}, {}, delivery expected {} (sequence {})",
        record.id,
        order.model,
        order.price,
        date(order.expected_delivery),
        record.sequence
    )
}

fn relay_line(report: &RelayReport, topic: &str) -> String {
    let mut line = format!("published {} to {topic}", events(report.published));
    if report.queued > 0 {
        line.push_str(&format!("; {} queued in the outbox", events(report.queued)));
    }
    if let Some(stop) = &report.stopped {
        line.push_str(&format!(" ({stop}); `sales relay` will deliver them"));
    }
    line
}

fn events(count: u64) -> String {
    format!("{count} event{}", if count == 1 { "" } else { "s" })
}

/// `2025-01-06 08:00:00Z`: UTC, to the second.
fn timestamp(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

fn date(days: i32) -> String {
    time::Date::from_julian_day(days + 2_440_588).map_or_else(|_| days.to_string(), |date| date.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_utc() {
        assert_eq!(date(20094), "2025-01-06");
        assert_eq!(timestamp(crate::simulate::DEFAULT_START_MS), "2025-01-06 08:00:00Z");
    }
}
