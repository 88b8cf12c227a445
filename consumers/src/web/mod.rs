//! `dashboard serve`: the dashboard department consuming as `run` does, and, from the same
//! process, a live page of its sales statistics and of the whole pipeline.
//!
//! Three producers each keep one section of the page current in a [`watch`] channel, as JSON:
//! - [`sales`]: the dashboard's statistics, recomputed when its checkpoints move (polled every
//!   200 ms from a read-only connection of its own, so the consumer is never asked anything);
//! - [`events`]: the last events of the orders topic as they arrive, read by a tail reader
//!   (the projection keeps no customer names; the log does);
//! - [`pipeline`]: every department of the registry as Kafka sees its group (committed offsets
//!   against the log end, state, members, dead letters, a shadow rebuild), sampled
//!   periodically, with an hour of lag history kept here.
//!
//! The HTTP side ([`routes`]) only reads those channels: a watch channel keeps the latest value
//! and never waits for a reader, so a slow or vanished browser cannot hold up consumption, and
//! the runtime never awaits the web side.

mod events;
mod pipeline;
mod routes;
mod sales;
mod tail;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgMatches, Args, FromArgMatches};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use edison_common::args::SharedArgs;
use edison_common::db;

use crate::command::{Outcome, Running};
use crate::departments::Dashboard;
use crate::runtime::{self, checkpoint, ConsumeArgs, Projection, Stop};

/// The department that `serve` runs: its command line gets the `serve` subcommand.
pub const DEPARTMENT: &str = Dashboard::NAME;

const ABOUT: &str = "Consume as `run` does and serve a live page of the sales and of every department's lag (GET only)";

/// The flags of `dashboard serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where the page listens. Loopback by default: the page shows customer names, so exposing
    /// it is a decision to take explicitly (0 as port picks a free one, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Seconds between two samples of every department's group (lag, rate, history).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, value_parser = parse_seconds)]
    pub sample_seconds: f64,

    /// How many of the latest events the page lists.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub recent: u16,

    /// The consumer groups of the departments the page monitors are PREFIX + name (`warehouse`
    /// by default, as each department's default group is its name). The dashboard's own group
    /// is --group-id.
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub group_prefix: String,

    /// How the dashboard consumes: as `run` does.
    #[command(flatten)]
    pub consume: ConsumeArgs,
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| (0.2..=600.0).contains(s))
        .ok_or_else(|| format!("expected seconds between 0.2 and 600, got {text:?}"))
}

/// The `serve` subcommand, added to the dashboard's command line by `cli`.
pub fn command() -> clap::Command {
    ServeArgs::augment_args(clap::Command::new("serve").about(ABOUT))
}

/// Runs `dashboard serve` from the department's matches (`shared`) and those of `serve`.
pub fn run(shared: &ArgMatches, serve_matches: &ArgMatches, shutdown: CancellationToken) -> Running {
    let parsed = SharedArgs::from_arg_matches(shared).and_then(|shared| Ok((shared, ServeArgs::from_arg_matches(serve_matches)?)));
    Box::pin(async move {
        let (shared, args) = parsed?;
        serve(&shared, &args, shutdown).await
    })
}

/// The JSON of each section of the page, latest first: what the routes serve.
#[derive(Clone)]
struct Sections {
    sales: watch::Receiver<Arc<str>>,
    events: watch::Receiver<Arc<str>>,
    pipeline: watch::Receiver<Arc<str>>,
    /// Ends the live streams, which would otherwise hold the graceful shutdown open.
    shutdown: CancellationToken,
}

/// Consumes into the dashboard's projection and serves the page until `shutdown`; returns the
/// run's counts as `run` does.
pub async fn serve(shared: &SharedArgs, args: &ServeArgs, shutdown: CancellationToken) -> Outcome {
    let kafka = &shared.kafka;
    let topic = kafka.topic.clone();
    let group = shared.group_id(DEPARTMENT);
    let options = args.consume.options(&topic, &group, Stop::Never)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;

    let db = shared.connect(DEPARTMENT, Dashboard.migrator()).await?;
    checkpoint::ensure_table(&db.pool).await?;
    // The page reads through a connection of its own, so it never takes one the consumer needs.
    let url = shared.database_url(DEPARTMENT);
    let reader = db::open_existing(&url, Some(&shared.database_schema(DEPARTMENT)))
        .await?
        .context("the dashboard's database vanished after it was created")?;

    let (sales_tx, sales_rx) = watch::channel(Arc::from("null"));
    let (events_tx, events_rx) = watch::channel(Arc::from("[]"));
    let (pipeline_tx, pipeline_rx) = watch::channel(Arc::from("null"));
    let web = shutdown.child_token();
    let mut tasks = JoinSet::new();
    tasks.spawn(sales::publish(reader.pool.clone(), topic.clone(), sales_tx, web.clone()));
    tasks.spawn(events::publish(kafka.client_config(), topic.clone(), usize::from(args.recent), events_tx, web.clone()));
    let monitor = pipeline::Monitor::new(
        kafka.client_config(),
        &topic,
        &options.dead_letter_topic,
        &group,
        &args.group_prefix,
        Duration::from_secs_f64(args.sample_seconds),
    );
    tasks.spawn(monitor.publish(reader.pool.clone(), pipeline_tx, web.clone()));

    let sections = Sections { sales: sales_rx, events: events_rx, pipeline: pipeline_rx, shutdown: web.clone() };
    let server = axum::serve(listener, routes::router(sections)).with_graceful_shutdown(web.clone().cancelled_owned());
    tasks.spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "the page's server stopped");
        }
    });
    println!("dashboard: serving http://{address}/ (Ctrl-C to stop)");

    let stats = runtime::run(&Dashboard, &db, kafka, &options, shutdown.clone()).await;
    // The consumer stopped (shut down, or failed): the page goes with it.
    web.cancel();
    while tasks.join_next().await.is_some() {}
    reader.pool.close().await;
    let stats = stats.with_context(|| format!("{DEPARTMENT} stopped with an error"))?;
    Ok(Some(stats))
}

/// `value` as the JSON a section holds. Serializing plain data cannot fail.
fn json<T: serde::Serialize>(value: &T) -> Arc<str> {
    Arc::from(serde_json::to_string(value).expect("plain data serializes"))
}
