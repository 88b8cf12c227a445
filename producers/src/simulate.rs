//! Deterministic order traffic: `sales simulate`.
//!
//! [`Simulation`] is a pure iterator of [`Transition`]s: everything (ids, names, timestamps,
//! fates) comes from a ChaCha RNG seeded with `seed` and a simulated clock starting at `start`,
//! never from the wall clock, so one seed always yields the same events. Orders arrive as a
//! Poisson process spread over `days`; each order's whole lifecycle is drawn when it is placed,
//! and a heap of pending steps interleaves the events of different orders in time order.
//!
//! [`simulate`] writes the events to the store in chunks of `max_in_flight`, one transaction per
//! chunk, and relays each chunk from the rows its commit returned while it generates and commits
//! the next ones. An event is published as it was committed (scrubbed only if its own chunk
//! erases its order), however late its erasure commits relative to the relay. So the topic
//! contents depend on the seed and the chunk size only, never on how far the relay lags behind.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use edison_schemas::{CarModel, Codec, EventType};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::domain::{self, Amendment, Change, Command, NewOrder, OrderRecord, Transition};
use crate::error::SalesError;
use crate::relay::{Relay, RelayStop};
use crate::store::{encode_outbox, Store};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// 2025-01-06T08:00:00Z: the default start of the simulated clock.
pub const DEFAULT_START_MS: i64 = 1_736_150_400_000;

/// Fates, as fractions of all orders.
const AMENDED: f64 = 0.10;
const CANCELLED_UNPAID: f64 = 0.08;
const CANCELLED_PAID: f64 = 0.04;
const ERASED: f64 = 0.01;

#[derive(Debug, Clone, PartialEq)]
pub struct SimulateOptions {
    pub orders: u64,
    pub seed: u64,
    /// Events per second to generate at most; `None` runs flat out.
    pub rate: Option<f64>,
    /// Events per store transaction, and so the most records the relay has in flight.
    pub max_in_flight: usize,
    /// Start of the simulated clock, ms since the Unix epoch.
    pub start_ms: i64,
    /// Days over which orders are placed.
    pub days: u32,
    /// Show a progress bar (only ever drawn when stderr is a terminal).
    pub progress: bool,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        SimulateOptions {
            orders: 1000,
            seed: 1,
            rate: None,
            max_in_flight: 30_000,
            start_ms: DEFAULT_START_MS,
            days: 5,
            progress: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SimulateReport {
    pub orders: u64,
    pub events: u64,
    /// Events by type (`PLACED`, `PAID`, ..., `ERASED` for tombstones).
    pub by_type: BTreeMap<&'static str, u64>,
    /// Outbox rows the broker acknowledged during the run.
    pub published: u64,
    /// Outbox rows still unpublished at the end.
    pub queued: u64,
    /// Why relaying stopped early, if it did.
    pub relay_stopped: Option<RelayStop>,
    pub elapsed_secs: f64,
    pub events_per_sec: f64,
}

/// Writes the simulation of `options` to the store and relays it if `relay` is given.
///
/// Order ids derive from the seed, so the same seed cannot run twice into one store: that is
/// refused up front ([`SalesError::SeedAlreadyUsed`]) rather than silently mixing in other ids.
pub async fn simulate(
    store: &Store,
    relay: Option<&Relay>,
    options: &SimulateOptions,
) -> Result<SimulateReport, SalesError> {
    let mut simulation = Simulation::new(options)?;
    if let Some(first) = simulation.peek_first_order() {
        if store.exists(first).await? {
            return Err(SalesError::SeedAlreadyUsed { seed: options.seed, order_id: first });
        }
    }
    let chunk_size = chunk_size(options);
    let progress = progress_bar(options);
    let started = Instant::now();
    let mut report = SimulateReport { orders: options.orders, ..SimulateReport::default() };
    let mut pipeline = match relay {
        Some(relay) => Some(relay.pipeline(store).await?),
        None => None,
    };
    // Generating and encoding the next chunk on its own thread overlaps the commit of this one.
    let (generated, mut chunks) = mpsc::channel(1);
    let generator = tokio::task::spawn_blocking(move || -> Result<(), SalesError> {
        let codec = Codec::new()?;
        loop {
            let chunk: Vec<Transition> = simulation.by_ref().take(chunk_size).collect();
            if chunk.is_empty() {
                return Ok(());
            }
            let payloads = encode_outbox(&codec, &chunk)?;
            if generated.blocking_send((chunk, payloads)).is_err() {
                return Ok(());
            }
        }
    });
    while let Some((chunk, payloads)) = chunks.recv().await {
        let rows = store.commit_encoded(&chunk, payloads).await?;
        for transition in &chunk {
            *report.by_type.entry(transition.change.as_str()).or_default() += 1;
        }
        report.events += chunk.len() as u64;
        progress.inc(chunk.len() as u64);
        if let Some(pipeline) = &mut pipeline {
            pipeline.relay(rows).await?;
        }
        if let Some(rate) = options.rate {
            let due = Duration::from_secs_f64(report.events as f64 / rate);
            tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
        }
    }
    generator.await.expect("the generator does not panic")?;
    if let Some(pipeline) = pipeline {
        (report.published, report.relay_stopped) = pipeline.finish().await?;
    }
    progress.finish_and_clear();
    report.queued = store.queued().await?;
    report.elapsed_secs = started.elapsed().as_secs_f64();
    report.events_per_sec = report.events as f64 / report.elapsed_secs.max(1e-9);
    Ok(report)
}

/// With a rate, small chunks keep the flow smooth (about ten commits a second).
fn chunk_size(options: &SimulateOptions) -> usize {
    let by_rate = options.rate.map_or(usize::MAX, |rate| (rate / 10.0).ceil() as usize);
    options.max_in_flight.min(by_rate).max(1)
}

fn progress_bar(options: &SimulateOptions) -> ProgressBar {
    if !options.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    // Placed orders average about 2.2 events; the bar length is an estimate.
    let bar = ProgressBar::new(options.orders * 22 / 10);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} events [{elapsed_precise}] {per_sec}").expect("valid template"),
    );
    bar
}

/// A pending lifecycle step of one order.
struct Step {
    at: i64,
    command: Command,
}

/// An order waiting for its next step, ordered by (time, arrival) in the heap.
struct Pending {
    at: i64,
    tie: u64,
    record: OrderRecord,
    /// Remaining steps, the next one last.
    steps: Vec<Step>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.tie) == (other.at, other.tie)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.tie).cmp(&(other.at, other.tie))
    }
}

/// The deterministic event stream of one seed. Memory holds only orders with steps pending.
pub struct Simulation {
    rng: ChaCha8Rng,
    remaining: u64,
    next_placement: i64,
    mean_gap_ms: f64,
    pending: BinaryHeap<Reverse<Pending>>,
    ties: u64,
}

impl Simulation {
    pub fn new(options: &SimulateOptions) -> Result<Simulation, SalesError> {
        if options.orders == 0 {
            return Err(SalesError::InvalidOption("--orders must be at least 1".into()));
        }
        if options.days == 0 {
            return Err(SalesError::InvalidOption("--days must be at least 1".into()));
        }
        if options.rate.is_some_and(|rate| !(rate.is_finite() && rate > 0.0)) {
            return Err(SalesError::InvalidOption("--rate must be a positive number of events per second".into()));
        }
        Ok(Simulation {
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            remaining: options.orders,
            next_placement: options.start_ms,
            mean_gap_ms: f64::from(options.days) * DAY as f64 / options.orders as f64,
            pending: BinaryHeap::new(),
            ties: 0,
        })
    }

    /// The id of the first order, without consuming anything.
    fn peek_first_order(&self) -> Option<uuid::Uuid> {
        let mut rng = self.rng.clone();
        (self.remaining > 0).then(|| domain::uuid_v7(self.next_placement, &mut rng))
    }

    fn place(&mut self) -> Transition {
        let at = self.next_placement;
        let rng = &mut self.rng;
        let id = domain::uuid_v7(at, rng);
        let customer_id = domain::uuid_v7(at, rng);
        let new = NewOrder {
            model: pick(rng, &CarModel::ALL),
            customer_name: format!("{} {}", pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES)),
            email: String::new(),
            address: address(rng),
        };
        let email = format!(
            "{}.{}@example.com",
            new.customer_name.replace(' ', ".").to_lowercase(),
            rng.random_range(1..1000)
        );
        let record = domain::place(&NewOrder { email, ..new }, id, customer_id, at)
            .expect("simulated customers are valid");
        let steps = lifecycle(rng, &record);
        let event_id = domain::uuid_v7(at, rng);
        // Exponential gaps: a Poisson arrival process.
        let gap = -self.mean_gap_ms * (1.0 - rng.random::<f64>()).ln();
        self.next_placement = at + gap.round() as i64;
        self.remaining -= 1;
        self.schedule(record.clone(), steps);
        Transition { record, change: Change::Event(EventType::Placed), event_id, occurred_at: at }
    }

    fn advance(&mut self, mut pending: Pending) -> Transition {
        let step = pending.steps.pop().expect("pending orders have a step");
        let (record, change) =
            pending.record.apply(&step.command, step.at).expect("simulated lifecycles are legal");
        let event_id = domain::uuid_v7(step.at, &mut self.rng);
        self.schedule(record.clone(), pending.steps);
        Transition { record, change, event_id, occurred_at: step.at }
    }

    fn schedule(&mut self, record: OrderRecord, steps: Vec<Step>) {
        if let Some(next) = steps.last() {
            self.ties += 1;
            self.pending.push(Reverse(Pending { at: next.at, tie: self.ties, record, steps }));
        }
    }
}

impl Iterator for Simulation {
    type Item = Transition;

    fn next(&mut self) -> Option<Transition> {
        let step_due = self.pending.peek().map(|Reverse(p)| p.at);
        let placement_due = (self.remaining > 0).then_some(self.next_placement);
        match (placement_due, step_due) {
            (Some(place), Some(step)) if step < place => self.pending.pop().map(|Reverse(p)| self.advance(p)),
            (Some(_), _) => Some(self.place()),
            (None, Some(_)) => self.pending.pop().map(|Reverse(p)| self.advance(p)),
            (None, None) => None,
        }
    }
}

/// Draws an order's whole lifecycle after placement: maybe an amendment (before payment), then
/// payment or an early cancellation, maybe a cancellation after payment, maybe an erasure.
fn lifecycle(rng: &mut ChaCha8Rng, placed: &OrderRecord) -> Vec<Step> {
    let order = &placed.order;
    let mut steps = Vec::with_capacity(4);
    let mut at = order.placed_at;
    let mut after = |rng: &mut ChaCha8Rng, min: i64, max: i64| {
        at += rng.random_range(min..max);
        at
    };
    if rng.random_bool(AMENDED) {
        let amendment = if rng.random_bool(0.5) {
            let others: Vec<CarModel> = CarModel::ALL.into_iter().filter(|&m| m != order.model).collect();
            Amendment { model: Some(pick(rng, &others)), address: None }
        } else {
            // A real amendment changes something: draw until the address differs.
            let moved = std::iter::repeat_with(|| address(rng))
                .find(|new| *new != order.customer.shipping_address)
                .expect("the address space has more than one address");
            Amendment { model: None, address: Some(moved) }
        };
        steps.push(Step { at: after(rng, 10 * MINUTE, DAY), command: Command::Amend(amendment) });
    }
    let fate: f64 = rng.random();
    if fate < CANCELLED_UNPAID {
        let reason = pick(rng, UNPAID_REASONS).to_owned();
        steps.push(Step { at: after(rng, HOUR, 2 * DAY), command: Command::Cancel { reason: Some(reason) } });
    } else {
        steps.push(Step { at: after(rng, 30 * MINUTE, 2 * DAY), command: Command::Pay });
        if fate < CANCELLED_UNPAID + CANCELLED_PAID {
            let reason = pick(rng, PAID_REASONS).to_owned();
            steps.push(Step { at: after(rng, DAY, 5 * DAY), command: Command::Cancel { reason: Some(reason) } });
        }
    }
    if rng.random_bool(ERASED) {
        steps.push(Step { at: after(rng, DAY, 10 * DAY), command: Command::Erase });
    }
    steps.reverse();
    steps
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

fn address(rng: &mut ChaCha8Rng) -> String {
    format!("{} {}, {}", rng.random_range(1..200), pick(rng, STREETS), pick(rng, CITIES))
}

const FIRST_NAMES: &[&str] = &[
    "Ada", "Grace", "Nikola", "Marie", "Alan", "Hedy", "Linus", "Katherine", "Tim", "Margaret", "Edsger", "Barbara",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace", "Hopper", "Tesla", "Curie", "Turing", "Lamarr", "Torvalds", "Johnson", "Berners-Lee", "Hamilton",
    "Dijkstra", "Liskov",
];
const STREETS: &[&str] = &["Volta Street", "Ampere Road", "Faraday Lane", "Ohm Square", "Maxwell Avenue", "Watt Way"];
const CITIES: &[&str] = &["Berlin", "Lisbon", "Amsterdam", "Milan", "Lyon", "Gdansk", "Vienna", "Ghent"];
const UNPAID_REASONS: &[&str] = &["found a better offer", "financing declined", "changed mind"];
const PAID_REASONS: &[&str] = &["delivery too late", "moving abroad", "changed mind"];

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use edison_schemas::OrderStatus;

    use super::*;

    fn options(orders: u64, seed: u64) -> SimulateOptions {
        SimulateOptions { orders, seed, ..SimulateOptions::default() }
    }

    fn run(orders: u64, seed: u64) -> Vec<Transition> {
        Simulation::new(&options(orders, seed)).unwrap().collect()
    }

    #[test]
    fn same_seed_same_events() {
        let a = run(500, 42);
        assert_eq!(a, run(500, 42));
        assert_ne!(a, run(500, 43));
    }

    #[test]
    fn events_are_in_time_order_and_interleave() {
        let events = run(300, 7);
        assert!(events.windows(2).all(|w| w[0].occurred_at <= w[1].occurred_at));
        let first_order = events[0].record.id;
        let second_event_of_first = events.iter().skip(1).position(|t| t.record.id == first_order).unwrap();
        assert!(second_event_of_first > 0, "another order's event comes in between");
        let span = events.last().unwrap().occurred_at - events[0].occurred_at;
        assert!(span > 3 * DAY, "spread over several days, got {span} ms");
    }

    #[test]
    fn sequences_count_up_per_order_and_ids_are_unique() {
        let events = run(2000, 3);
        let mut last: HashMap<uuid::Uuid, i64> = HashMap::new();
        for t in &events {
            let previous = last.insert(t.record.id, t.record.sequence).unwrap_or(0);
            assert_eq!(t.record.sequence, previous + 1);
        }
        let mut ids: Vec<_> = events.iter().map(|t| t.event_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), events.len());
        assert_eq!(last.len(), 2000);
    }

    #[test]
    fn fates_follow_the_configured_distribution() {
        let orders = 20_000;
        let events = run(orders, 11);
        let mut finals: HashMap<uuid::Uuid, &OrderRecord> = HashMap::new();
        let mut amended = std::collections::HashSet::new();
        for t in &events {
            finals.insert(t.record.id, &t.record);
            if t.change == Change::Event(EventType::Amended) {
                assert!(t.record.order.paid_at.is_none(), "amendments come before payment");
                amended.insert(t.record.id);
            }
        }
        let share = |n: usize| n as f64 / orders as f64;
        let count = |f: &dyn Fn(&OrderRecord) -> bool| finals.values().filter(|r| f(r)).count();
        let cancelled = |r: &OrderRecord| r.order.status == OrderStatus::Cancelled;
        // Within four standard deviations of a binomial share.
        let close = |actual: f64, p: f64| (actual - p).abs() < 4.0 * (p * (1.0 - p) / orders as f64).sqrt();
        assert!(close(share(amended.len()), AMENDED), "amended {}", share(amended.len()));
        let unpaid = share(count(&|r| cancelled(r) && r.order.paid_at.is_none()));
        assert!(close(unpaid, CANCELLED_UNPAID), "cancelled before payment {unpaid}");
        let paid = share(count(&|r| cancelled(r) && r.order.paid_at.is_some()));
        assert!(close(paid, CANCELLED_PAID), "cancelled after payment {paid}");
        let erased = share(count(&|r| r.erased_at.is_some()));
        assert!(close(erased, ERASED), "erased {erased}");
        let paid_active = share(count(&|r| r.order.status == OrderStatus::Paid));
        assert!(paid_active > 0.85, "most orders end paid: {paid_active}");
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(Simulation::new(&options(0, 1)).is_err());
        assert!(Simulation::new(&SimulateOptions { rate: Some(0.0), ..options(1, 1) }).is_err());
        assert!(Simulation::new(&SimulateOptions { rate: Some(-5.0), ..options(1, 1) }).is_err());
    }

    #[test]
    fn rate_limits_the_chunk() {
        assert_eq!(chunk_size(&SimulateOptions { rate: Some(50.0), ..options(1, 1) }), 5);
        assert_eq!(chunk_size(&options(1, 1)), 30_000);
    }
}
