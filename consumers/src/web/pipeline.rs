//! The pipeline section: every department of the registry as Kafka sees its consumer group.
//!
//! This server holds only the dashboard's database, so everything here comes from the broker:
//! committed offsets against the log end (the lag, as `status` and Kafka's own tools count
//! it), the group's state and members, the dead letters by the origin group in their headers,
//! and a shadow rebuild's group `GROUP.shadow`. Sampled every `--sample-seconds`, with an hour
//! of lag history kept in memory: a request never reaches the broker.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::ClientConfig;
use serde::Serialize;
use sqlx::AnyPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use edison_common::kafka::{self, committed_offsets_of, group_client, list_groups, GroupMember, GroupState, Watermarks};
use edison_common::time::now_ms;

use crate::admin::status::{format_eta, partitions, rate, PartitionStatus};
use crate::departments::DEPARTMENTS;
use crate::runtime::{checkpoint, HEADER_GROUP};

/// How much lag history is kept.
const HISTORY: Duration = Duration::from_secs(3600);

/// At most this many points of history go to the page: enough for a small chart, and a
/// bounded message however short the sample interval.
const CHART_POINTS: usize = 120;

/// The pipeline section of the page, as `/api/pipeline` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineView {
    /// The orders topic.
    pub topic: String,
    /// When the broker was last sampled, ms since the epoch.
    pub sampled_at_ms: i64,
    pub sample_seconds: f64,
    /// Why the last sample failed (the broker is unreachable, ...); the departments are then
    /// those of the last sample that worked.
    pub error: Option<String>,
    /// In registry order.
    pub departments: Vec<DepartmentView>,
}

/// One department's consumer group.
#[derive(Debug, Clone, Serialize)]
pub struct DepartmentView {
    /// Its name in the registry.
    pub department: String,
    /// Its consumer group, as this server was told to name it.
    pub group: String,
    /// As the broker says: Empty, Stable, PreparingRebalance, ..., or Dead (unknown to it).
    pub state: String,
    /// The group's active members.
    pub members: Vec<GroupMember>,
    /// Per partition: committed offset, log start and end, lag.
    pub partitions: Vec<PartitionStatus>,
    /// Summed over the partitions.
    pub lag: i64,
    /// Offsets the group committed per second since the previous sample.
    pub events_per_second: f64,
    /// "caught up", "—" without progress, or how long the lag takes at that rate.
    pub eta: String,
    /// The dashboard only: when its projection last committed a batch (its checkpoints). The
    /// other departments' databases are not this server's to read.
    pub last_applied_ms: Option<i64>,
    /// When this server last saw the group's committed offsets move; `None` since it started.
    pub last_progress_ms: Option<i64>,
    /// Dead letters on the dead-letter topic whose origin group header is this group.
    pub dead_lettered: u64,
    /// (ms since the epoch, lag) over the last hour, oldest first, at most [`CHART_POINTS`]
    /// (each point the highest lag of the samples it stands for).
    pub lag_history: Vec<(i64, i64)>,
    /// A shadow rebuild (group `GROUP.shadow`) the broker knows, running or interrupted.
    pub shadow: Option<ShadowView>,
}

/// A shadow rebuild's progress.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowView {
    /// `GROUP.shadow`.
    pub group: String,
    /// Stable while it builds, Empty once interrupted or caught up and waiting for the swap.
    pub state: String,
    /// How many members it has: one while `rebuild --shadow` runs.
    pub members: usize,
    /// Events replayed, out of `total`: what its committed offsets cover of the log.
    pub replayed: i64,
    pub total: i64,
    /// Events it has still to replay (`total - replayed`).
    pub lag: i64,
    /// Offsets it committed per second since the previous sample.
    pub events_per_second: f64,
    /// How long the rest takes at that rate, as `status` says it.
    pub eta: String,
}

/// What one sample read from the broker.
struct Sample {
    at: Instant,
    at_ms: i64,
    marks: Vec<Watermarks>,
    groups: HashMap<String, GroupState>,
    /// Committed offsets per group sampled: every department's, and the shadows the broker knows.
    committed: HashMap<String, HashMap<i32, i64>>,
}

/// A group's committed offsets at the previous sample, and when they last moved.
#[derive(Default)]
struct Progress {
    previous: Option<(Instant, HashMap<i32, i64>)>,
    moved_ms: Option<i64>,
}

/// Samples every department's group, remembering what rates and history need.
pub struct Monitor {
    config: ClientConfig,
    topic: String,
    dead_letter_topic: String,
    every: Duration,
    /// (department, group), in registry order.
    watched: Vec<(String, String)>,
    /// Lists groups and reads watermarks, made at the first sample.
    lister: Option<BaseConsumer>,
    /// A client per group whose offsets are read, kept across samples.
    clients: HashMap<String, BaseConsumer>,
    progress: HashMap<String, Progress>,
    history: HashMap<String, VecDeque<(i64, i64)>>,
}

impl Monitor {
    /// A monitor of the departments' groups on `topic`: the dashboard's is `dashboard_group`,
    /// every other one `group_prefix` + its name.
    pub fn new(
        config: ClientConfig,
        topic: &str,
        dead_letter_topic: &str,
        dashboard_group: &str,
        group_prefix: &str,
        every: Duration,
    ) -> Monitor {
        let watched = DEPARTMENTS
            .iter()
            .map(|department| {
                let group = match department.name == super::DEPARTMENT {
                    true => dashboard_group.to_owned(),
                    false => format!("{group_prefix}{}", department.name),
                };
                (department.name.to_owned(), group)
            })
            .collect();
        Monitor {
            config,
            topic: topic.to_owned(),
            dead_letter_topic: dead_letter_topic.to_owned(),
            every,
            watched,
            lister: None,
            clients: HashMap::new(),
            progress: HashMap::new(),
            history: HashMap::new(),
        }
    }

    /// Reads the broker: watermarks, every group's state in one listing, and the committed
    /// offsets of each department and of each shadow the broker knows. Blocks.
    fn sample(&mut self) -> KafkaResult<Sample> {
        if self.lister.is_none() {
            // The log end as Kafka's tools count lag (see `kafka::log_end_offsets`).
            let mut config = self.config.clone();
            config.set("isolation.level", "read_uncommitted");
            self.lister = Some(kafka::create(&config)?);
        }
        let lister = self.lister.as_ref().expect("made above");
        let marks = kafka::watermarks(lister, &self.topic)?;
        let groups = list_groups(lister)?;
        let mut committed = HashMap::new();
        for (_, group) in &self.watched {
            let shadow = shadow_group(group);
            for group in std::iter::once(group.clone()).chain(groups.contains_key(&shadow).then_some(shadow)) {
                if !self.clients.contains_key(&group) {
                    self.clients.insert(group.clone(), group_client(&self.config, &group)?);
                }
                committed.insert(group.clone(), committed_offsets_of(&self.clients[&group], &self.topic)?);
            }
        }
        Ok(Sample { at: Instant::now(), at_ms: now_ms(), marks, groups, committed })
    }

    /// The section from `sample`, moving rates, progress and history on.
    fn view(&mut self, sample: &Sample, dead_letters: &HashMap<String, u64>, dashboard_applied_ms: Option<i64>) -> PipelineView {
        let mut departments = Vec::new();
        for (department, group) in self.watched.clone() {
            let (state, members) = state_of(&sample.groups, &group);
            let figures = self.figures(sample, &group);
            let history = self.history.entry(group.clone()).or_default();
            history.push_back((sample.at_ms, figures.lag));
            while history.front().is_some_and(|(at, _)| *at < sample.at_ms - HISTORY.as_millis() as i64) {
                history.pop_front();
            }
            let lag_history = downsample(history.make_contiguous(), CHART_POINTS);
            let shadow_group = shadow_group(&group);
            let shadow = sample.committed.contains_key(&shadow_group).then(|| {
                let (state, members) = state_of(&sample.groups, &shadow_group);
                let shadow = self.figures(sample, &shadow_group);
                let total: i64 = sample.marks.iter().map(|w| w.high - w.low).sum();
                ShadowView {
                    group: shadow_group,
                    state,
                    members: members.len(),
                    replayed: total - shadow.lag,
                    total,
                    lag: shadow.lag,
                    events_per_second: shadow.rate,
                    eta: format_eta(shadow.lag, shadow.rate),
                }
            });
            departments.push(DepartmentView {
                last_applied_ms: (department == super::DEPARTMENT).then_some(dashboard_applied_ms).flatten(),
                last_progress_ms: self.progress.get(&group).and_then(|p| p.moved_ms),
                dead_lettered: dead_letters.get(&group).copied().unwrap_or(0),
                department,
                group,
                state,
                members,
                eta: format_eta(figures.lag, figures.rate),
                lag: figures.lag,
                events_per_second: figures.rate,
                partitions: figures.partitions,
                lag_history,
                shadow,
            });
        }
        PipelineView {
            topic: self.topic.clone(),
            sampled_at_ms: sample.at_ms,
            sample_seconds: self.every.as_secs_f64(),
            error: None,
            departments,
        }
    }

    /// `group`'s partitions, lag and rate in `sample`, remembering its offsets for the next.
    fn figures(&mut self, sample: &Sample, group: &str) -> Figures {
        let empty = HashMap::new();
        let committed = sample.committed.get(group).unwrap_or(&empty);
        let partitions = partitions(&sample.marks, committed);
        let progress = self.progress.entry(group.to_owned()).or_default();
        let rate = match &progress.previous {
            Some((at, before)) => {
                if before != committed {
                    progress.moved_ms = Some(sample.at_ms);
                }
                rate(before, committed, &sample.marks, sample.at.duration_since(*at).as_secs_f64())
            }
            None => 0.0,
        };
        progress.previous = Some((sample.at, committed.clone()));
        Figures { lag: partitions.iter().map(|p| p.lag).sum(), rate, partitions }
    }

    /// Samples every `--sample-seconds` and publishes the section into `pipeline`, counting the
    /// dead-letter topic's records by origin group meanwhile, until `shutdown`.
    pub async fn publish(self, pool: AnyPool, pipeline: watch::Sender<Arc<str>>, shutdown: CancellationToken) {
        let dead_letters: Mutex<HashMap<String, u64>> = Mutex::new(HashMap::new());
        let (config, dead_letter_topic) = (self.config.clone(), self.dead_letter_topic.clone());
        let count = |message: &BorrowedMessage<'_>| {
            let origin = message.headers().and_then(|headers| {
                headers.iter().find(|h| h.key == HEADER_GROUP).and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).into_owned())
            });
            *dead_letters.lock().expect("never poisoned").entry(origin.unwrap_or_default()).or_default() += 1;
        };
        let counting = super::tail::follow(&config, &dead_letter_topic, |mark| mark.low, count, &shutdown);
        let sampling = async {
            let (topic, every) = (self.topic.clone(), self.every);
            let mut monitor = self;
            let mut last: Option<PipelineView> = None;
            loop {
                let (back, sampled) = tokio::task::spawn_blocking(move || {
                    let sampled = monitor.sample();
                    (monitor, sampled)
                })
                .await
                .expect("a broker call panicked");
                monitor = back;
                let view = match sampled {
                    Ok(sample) => {
                        let applied = checkpoint::read(&pool, &topic).await.ok().and_then(|c| c.iter().map(|c| c.applied_at).max());
                        let counts = dead_letters.lock().expect("never poisoned").clone();
                        monitor.view(&sample, &counts, applied)
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot sample the consumer groups");
                        let mut view = last.clone().unwrap_or_else(|| PipelineView {
                            topic: topic.clone(),
                            sampled_at_ms: 0,
                            sample_seconds: every.as_secs_f64(),
                            error: None,
                            departments: Vec::new(),
                        });
                        view.error = Some(error.to_string());
                        view
                    }
                };
                pipeline.send_replace(super::json(&view));
                last = Some(view);
                tokio::time::sleep(every).await;
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = counting => {}
            _ = sampling => {}
        }
    }
}

/// A group's lag, rate and partitions in one sample.
struct Figures {
    lag: i64,
    rate: f64,
    partitions: Vec<PartitionStatus>,
}

/// The group a shadow rebuild of `group` consumes as (see `rebuild --shadow`).
fn shadow_group(group: &str) -> String {
    format!("{group}.shadow")
}

fn state_of(groups: &HashMap<String, GroupState>, group: &str) -> GroupState {
    groups.get(group).cloned().unwrap_or_else(|| ("Dead".to_owned(), Vec::new()))
}

/// At most `points` of `history`, each the last time and the highest lag of a run of
/// consecutive samples, so a spike between two points still shows.
fn downsample(history: &[(i64, i64)], points: usize) -> Vec<(i64, i64)> {
    let per_point = history.len().div_ceil(points.max(1)).max(1);
    history
        .chunks(per_point)
        .map(|chunk| (chunk[chunk.len() - 1].0, chunk.iter().map(|(_, lag)| *lag).max().unwrap_or(0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_spikes_when_it_is_thinned() {
        let history: Vec<(i64, i64)> = (0..10).map(|i| (i, if i == 3 { 99 } else { i })).collect();
        assert_eq!(downsample(&history, 20), history, "short enough: as it is");
        assert_eq!(downsample(&history, 5), vec![(1, 1), (3, 99), (5, 5), (7, 7), (9, 9)]);
        assert_eq!(downsample(&history, 3).len(), 3);
        assert!(downsample(&[], 5).is_empty());
    }

    fn sample(at: Instant, at_ms: i64, committed: &[(&str, &[(i32, i64)])]) -> Sample {
        Sample {
            at,
            at_ms,
            marks: vec![Watermarks { partition: 0, low: 0, high: 100 }, Watermarks { partition: 1, low: 0, high: 50 }],
            groups: HashMap::from([("dash".to_owned(), ("Stable".to_owned(), vec![]))]),
            committed: committed.iter().map(|(group, offsets)| (group.to_string(), offsets.iter().copied().collect())).collect(),
        }
    }

    #[test]
    fn lag_rate_progress_shadows_and_dead_letters_per_department() {
        let mut monitor = Monitor::new(ClientConfig::new(), "t", "t.dlq", "dash", "p.", Duration::from_secs(1));
        let groups: Vec<&str> = monitor.watched.iter().map(|(_, group)| group.as_str()).collect();
        assert!(groups.contains(&"dash") && groups.contains(&"p.warehouse"), "{groups:?}");
        let start = Instant::now();
        let first = monitor.view(&sample(start, 1_000, &[("dash", &[(0, 40)]), ("p.warehouse", &[(0, 100), (1, 50)])]), &HashMap::new(), Some(7));
        let dash = first.departments.iter().find(|d| d.group == "dash").unwrap();
        assert_eq!((dash.lag, dash.state.as_str(), dash.last_applied_ms), (60 + 50, "Stable", Some(7)));
        assert_eq!((dash.events_per_second, dash.eta.as_str(), dash.last_progress_ms), (0.0, "—", None), "no rate from one sample");
        let warehouse = first.departments.iter().find(|d| d.group == "p.warehouse").unwrap();
        assert_eq!((warehouse.lag, warehouse.state.as_str(), warehouse.eta.as_str()), (0, "Dead", "caught up"));
        assert_eq!(warehouse.last_applied_ms, None, "only the dashboard's own database is read");

        let later = sample(
            start + Duration::from_secs(2),
            3_000,
            &[("dash", &[(0, 100), (1, 10)]), ("p.warehouse", &[(0, 100), (1, 50)]), ("p.warehouse.shadow", &[(0, 30)])],
        );
        let second = monitor.view(&later, &HashMap::from([("p.warehouse".to_owned(), 3)]), None);
        let dash = second.departments.iter().find(|d| d.group == "dash").unwrap();
        assert_eq!((dash.lag, dash.events_per_second, dash.eta.as_str()), (40, 35.0, "2s"), "(60 + 10) / 2 s");
        assert_eq!(dash.last_progress_ms, Some(3_000));
        assert_eq!(dash.lag_history, vec![(1_000, 110), (3_000, 40)]);
        let warehouse = second.departments.iter().find(|d| d.group == "p.warehouse").unwrap();
        assert_eq!((warehouse.dead_lettered, warehouse.last_progress_ms), (3, None));
        let shadow = warehouse.shadow.as_ref().expect("a shadow with committed offsets");
        assert_eq!((shadow.replayed, shadow.total, shadow.lag, shadow.state.as_str()), (30, 150, 120, "Dead"));
    }
}
