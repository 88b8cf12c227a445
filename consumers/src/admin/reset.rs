//! `DEPARTMENT reset-offsets`: `kafka-consumer-groups --reset-offsets` for one department, but
//! a dry run by default, refused while the group has members, and, to the earliest offsets, also
//! emptying the projection so the next run rebuilds it from zero.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use anyhow::{bail, Context};
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use edison_common::args::SharedArgs;
use edison_common::db::redact;
use edison_common::kafka::{commit_offsets, create, GroupMember};

use super::{blocking, group_offsets, group_state, watermarks, Watermarks, TIMEOUT};
use crate::runtime::checkpoint;
use crate::runtime::planner::{self, Measured};
use crate::runtime::Projection;

pub const HELP: &str = "\
Move the department's consumer group to other offsets, so that its next run starts there.

A DRY RUN unless --execute: prints, per partition, the group's committed offset (CURRENT), the \
TARGET, the log-end offset, how many events the next run applies a second time (REPLAY: from \
TARGET up to CURRENT) and how many it consumes in all (TO-CONSUME: from TARGET to the log end), \
and changes nothing. It also estimates how long that run takes, from TO-CONSUME and the apply \
rate this projection measured on its own past runs (kept in its database beside its checkpoints, \
and kept by a reset), or says that no run has been measured yet.

  --to-earliest    the log start. With --execute it also empties the projection (the department's \
tables) and its checkpoints for the topic, in one transaction, so the next run rebuilds it from \
zero. The mailer's ledger of mail is not part of its projection and is kept: a rebuild mails \
nothing again.
  --to-datetime    the first offset of each partition at or after a time (ISO 8601; without a UTC \
offset, UTC). The projection is kept: applying an event again changes nothing.
  --to-offset      explicit offsets: PARTITION:OFFSET[,...] for those partitions only, or OFFSET \
for all. Moving past the committed offset skips events the projection never applied: the plan \
warns how many.

Refused (exit 1) while the group has active members: stop every process of the department (its \
group) first. The offsets are committed for the group without joining it; Kafka's own \
kafka-consumer-groups --describe shows them. Only this department's group and database are \
touched.";

#[derive(Debug, Clone, Args)]
#[group(skip)]
#[command(group = clap::ArgGroup::new("reset_target").required(true).args(["to_earliest", "to_datetime", "to_offset"]))]
pub struct ResetArgs {
    /// To the log start, emptying the projection and its checkpoints too (a rebuild from zero).
    #[arg(long)]
    pub to_earliest: bool,

    /// To the first offsets at or after this time: 2026-11-20T12:00:00Z, ...+01:00, 2026-11-20T12:00:00
    /// (UTC) or 2026-11-20 (midnight UTC). The projection is kept.
    #[arg(long, value_name = "ISO8601", value_parser = edison_common::time::parse_datetime)]
    pub to_datetime: Option<i64>,

    /// To explicit offsets: PARTITION:OFFSET[,...], or OFFSET for every partition. The projection is kept.
    #[arg(long, value_name = "PARTITION:OFFSET[,...]", value_parser = parse_offsets)]
    pub to_offset: Option<ExplicitOffsets>,

    /// Do it. Without this flag, only print what would happen.
    #[arg(long)]
    pub execute: bool,
}

/// Where to move the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Earliest,
    /// Milliseconds since the epoch.
    Datetime(i64),
    Offsets(ExplicitOffsets),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExplicitOffsets {
    /// The same offset on every partition.
    All(i64),
    /// Partition → offset; the partitions not named keep theirs.
    Partitions(BTreeMap<i32, i64>),
}

impl ResetArgs {
    pub fn target(&self) -> Target {
        match (&self.to_datetime, &self.to_offset) {
            (Some(at), _) => Target::Datetime(*at),
            (_, Some(offsets)) => Target::Offsets(offsets.clone()),
            _ => Target::Earliest,
        }
    }
}

/// `OFFSET` or `PARTITION:OFFSET[,PARTITION:OFFSET...]`.
pub fn parse_offsets(text: &str) -> Result<ExplicitOffsets, String> {
    let number = |s: &str, what: &str| {
        s.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{what} {s:?} is not a number >= 0"))
    };
    if !text.contains(':') {
        return number(text, "offset").map(ExplicitOffsets::All);
    }
    let mut offsets = BTreeMap::new();
    for pair in text.split(',') {
        let (partition, offset) = pair
            .split_once(':')
            .ok_or_else(|| format!("expected PARTITION:OFFSET, got {pair:?}"))?;
        let partition = i32::try_from(number(partition, "partition")?)
            .map_err(|_| format!("partition {partition:?} is too large"))?;
        if offsets
            .insert(partition, number(offset, "offset")?)
            .is_some()
        {
            return Err(format!("partition {partition} is named twice"));
        }
    }
    Ok(ExplicitOffsets::Partitions(offsets))
}

/// What the reset does to one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
    /// The group's committed offset; `None` if it never committed one.
    pub current: Option<i64>,
    pub target: i64,
}

impl Move {
    /// Where the group's next run would start without the reset.
    fn start(&self) -> i64 {
        self.current.unwrap_or(self.low)
    }

    /// Events applied before that the next run applies again.
    pub fn replay(&self) -> i64 {
        (self.start() - self.target).max(0)
    }

    /// Events the next run consumes.
    pub fn to_consume(&self) -> i64 {
        (self.high - self.target).max(0)
    }

    /// Events never applied that the reset jumps over.
    pub fn skip(&self) -> i64 {
        (self.target - self.start()).max(0)
    }
}

/// Each partition's move. `by_time` holds, for `Target::Datetime`, the first offset at or after
/// the time per partition (`None`: no record that late, so the log end).
pub fn plan_moves(
    target: &Target,
    marks: &[Watermarks],
    committed: &HashMap<i32, i64>,
    by_time: &HashMap<i32, Option<i64>>,
) -> Result<Vec<Move>, String> {
    let explicit = |partition: i32| match target {
        Target::Offsets(ExplicitOffsets::All(offset)) => Some(*offset),
        Target::Offsets(ExplicitOffsets::Partitions(offsets)) => offsets.get(&partition).copied(),
        _ => None,
    };
    if let Target::Offsets(ExplicitOffsets::Partitions(offsets)) = target {
        if let Some(unknown) = offsets
            .keys()
            .find(|p| !marks.iter().any(|w| w.partition == **p))
        {
            let last = marks.iter().map(|w| w.partition).max().unwrap_or(-1);
            return Err(format!(
                "partition {unknown} does not exist (the topic has partitions 0 to {last})"
            ));
        }
    }
    let mut moves = Vec::new();
    for w in marks {
        let target = match target {
            Target::Earliest => w.low,
            Target::Datetime(_) => by_time
                .get(&w.partition)
                .copied()
                .flatten()
                .unwrap_or(w.high)
                .clamp(w.low, w.high),
            Target::Offsets(_) => match explicit(w.partition) {
                Some(offset) if (w.low..=w.high).contains(&offset) => offset,
                Some(offset) => {
                    return Err(format!(
                    "offset {offset} is outside partition {}'s log: from {} to {} (its log end)",
                    w.partition, w.low, w.high
                ))
                }
                None => continue,
            },
        };
        moves.push(Move {
            partition: w.partition,
            low: w.low,
            high: w.high,
            current: committed.get(&w.partition).copied(),
            target,
        });
    }
    Ok(moves)
}

/// A reset, for printing.
#[derive(Debug)]
pub struct Plan<'a> {
    pub department: &'a str,
    pub group: &'a str,
    pub topic: &'a str,
    pub target: &'a Target,
    pub moves: &'a [Move],
    /// The tables a reset to the earliest offsets empties, and the database holding them.
    pub clears: Option<(&'a [&'a str], String)>,
    pub members: &'a [GroupMember],
    pub execute: bool,
    /// The projection's apply rate measured on its past runs, for the estimate.
    pub measured: Measured,
}

pub fn render_plan(plan: &Plan<'_>) -> String {
    let mut out = String::new();
    let to = match plan.target {
        Target::Earliest => "to the earliest offsets".to_owned(),
        Target::Datetime(ms) => format!(
            "to the first offsets at or after {}",
            edison_common::time::format_rfc3339(*ms)
        ),
        Target::Offsets(_) => "to explicit offsets".to_owned(),
    };
    let mode = if plan.execute { "" } else { " (DRY RUN)" };
    let _ = writeln!(
        out,
        "{}: reset group {} on topic {} {to}{mode}",
        plan.department, plan.group, plan.topic
    );
    let _ = writeln!(
        out,
        "{:>9} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "PARTITION", "CURRENT", "TARGET", "LOG-END", "REPLAY", "TO-CONSUME"
    );
    for m in plan.moves {
        let current = m.current.map_or("-".to_owned(), |c| c.to_string());
        let _ = writeln!(
            out,
            "{:>9} {current:>12} {:>12} {:>12} {:>10} {:>10}",
            m.partition,
            m.target,
            m.high,
            m.replay(),
            m.to_consume()
        );
    }
    let (replay, consume): (i64, i64) = plan
        .moves
        .iter()
        .map(|m| (m.replay(), m.to_consume()))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let _ = writeln!(
        out,
        "{:>9} {:>12} {:>12} {:>12} {replay:>10} {consume:>10}",
        "TOTAL", "", "", ""
    );
    if plan.moves.is_empty() {
        out.push_str("No partition to move.\n");
    }
    out.push_str(&planner::render_estimate(
        "The next run consumes",
        u64::try_from(consume).unwrap_or(0),
        &plan.measured,
        "this projection",
    ));
    for m in plan.moves.iter().filter(|m| m.skip() > 0) {
        let _ = writeln!(
            out,
            "WARNING: partition {} moves forward past its committed offset: {} events are never applied to the projection.",
            m.partition,
            m.skip()
        );
    }
    if let Some((tables, database)) = &plan.clears {
        let verb = if plan.execute {
            "Also empties"
        } else {
            "--execute also empties"
        };
        let _ = writeln!(
            out,
            "{verb}, in one transaction after moving the offsets: {} and the {} rows of topic {} in {database}.",
            tables.join(", "),
            checkpoint::TABLE,
            plan.topic
        );
    } else {
        out.push_str("The projection is kept, and its checkpoints move back with the offsets: events applied again change nothing.\n");
    }
    if !plan.members.is_empty() {
        let _ = writeln!(
            out,
            "The group has active members ({}): a reset is refused until they stop.",
            member_list(plan.members)
        );
    }
    if !plan.execute {
        out.push_str("Nothing changed. Run again with --execute to do it.\n");
    }
    out
}

fn member_list(members: &[GroupMember]) -> String {
    members
        .iter()
        .map(|m| format!("{}@{}", m.client_id, m.host))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Plans the reset, prints the plan, and with `--execute` carries it out.
pub async fn reset_offsets<P: Projection>(
    projection: &P,
    shared: &SharedArgs,
    args: &ResetArgs,
) -> anyhow::Result<()> {
    shared.require_topic().await?;
    let config = shared.kafka.client_config();
    let (group, topic) = (shared.group_id(P::NAME), shared.kafka.topic.clone());
    let target = args.target();
    let (state, members) = group_state(&config, &group).await?;
    let marks = watermarks(&config, &topic).await?;
    let committed = group_offsets(&config, &group, &topic).await?;
    let by_time = match target {
        Target::Datetime(at) => {
            let (config, topic, marks) = (config.clone(), topic.clone(), marks.clone());
            blocking(move || offsets_for_time(&config, &topic, &marks, at)).await?
        }
        _ => HashMap::new(),
    };
    let moves = plan_moves(&target, &marks, &committed, &by_time).map_err(anyhow::Error::msg)?;
    let clears =
        (target == Target::Earliest).then(|| (P::TABLES, redact(&shared.database_url(P::NAME))));
    let measured = planner::measured_rate(
        &shared.database_url(P::NAME),
        &shared.database_schema(P::NAME),
        &topic,
    )
    .await;
    let plan = Plan {
        department: P::NAME,
        group: &group,
        topic: &topic,
        target: &target,
        moves: &moves,
        clears,
        members: &members,
        execute: args.execute,
        measured,
    };
    print!("{}", render_plan(&plan));
    if !args.execute {
        return Ok(());
    }
    refuse_if_active(&group, &state, &members)?;

    // Offsets first, then the projection. Should the process die in between, the projection is
    // still whole and the offsets are at the start: the next run replays everything onto it,
    // which changes nothing (apply is idempotent), and `reset-offsets --to-earliest` can simply
    // be run again. The other order is unsafe: an emptied projection with offsets left where they
    // were would skip, for good, every row of the events before them.
    let targets: HashMap<i32, i64> = moves.iter().map(|m| (m.partition, m.target)).collect();
    {
        let (config, group, topic, targets) = (
            config.clone(),
            group.clone(),
            topic.clone(),
            targets.clone(),
        );
        blocking(move || commit_offsets(&config, &group, &topic, &targets))
    }
    .await
    .with_context(|| format!("cannot commit offsets for the group {group}; nothing changed"))?;
    let now = group_offsets(&config, &group, &topic).await?;
    if let Some(m) = moves
        .iter()
        .find(|m| now.get(&m.partition) != Some(&m.target))
    {
        bail!(
            "partition {} of group {group} is at {:?} instead of {} after the commit",
            m.partition,
            now.get(&m.partition),
            m.target
        );
    }
    println!("Committed {} partition(s) of group {group}.", moves.len());

    if target == Target::Earliest {
        let emptied =
            empty_projection(projection, shared, &config, &group, &topic, &targets).await?;
        println!("Emptied {emptied}; the next run rebuilds the projection from zero.");
    } else {
        let db = shared.connect(P::NAME, projection.migrator()).await.context(UNFINISHED)?;
        checkpoint::ensure_table(&db.pool).await.context(UNFINISHED)?;
        let moved = checkpoint::move_back(&db.pool, &topic, &targets).await.context(UNFINISHED)?;
        db.pool.close().await;
        println!("Moved {moved} of the projection's checkpoints back with the offsets: the next run applies those events again.");
    }
    Ok(())
}

/// What a reset that committed the offsets but failed on the database says.
const UNFINISHED: &str = "the offsets are reset but the projection is not; run the same reset again";

/// Empties `P::TABLES` and `topic`'s checkpoints in one transaction, checking before it commits
/// that no consumer joined the group or moved its offsets since they were reset (the window
/// between the two checks and commits is as small as it gets without a shared transaction).
async fn empty_projection<P: Projection>(
    projection: &P,
    shared: &SharedArgs,
    config: &ClientConfig,
    group: &str,
    topic: &str,
    targets: &HashMap<i32, i64>,
) -> anyhow::Result<String> {
    let db = shared.connect(P::NAME, projection.migrator()).await.context(UNFINISHED)?;
    checkpoint::ensure_table(&db.pool)
        .await
        .context(UNFINISHED)?;
    let mut tx = db.pool.begin().await.context(UNFINISHED)?;
    let mut emptied = Vec::new();
    for table in P::TABLES {
        let deleted = sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await
            .context(UNFINISHED)?;
        emptied.push(format!("{table} ({} rows)", deleted.rows_affected()));
    }
    let deleted = sqlx::query(&format!(
        "DELETE FROM {} WHERE topic = $1",
        checkpoint::TABLE
    ))
    .bind(topic)
    .execute(&mut *tx)
    .await
    .context(UNFINISHED)?;
    emptied.push(format!(
        "{} of topic {topic} ({} rows)",
        checkpoint::TABLE,
        deleted.rows_affected()
    ));

    let (state, members) = group_state(config, group).await?;
    let now = group_offsets(config, group, topic).await?;
    if !members.is_empty() || targets.iter().any(|(p, offset)| now.get(p) != Some(offset)) {
        tx.rollback().await?;
        bail!(
            "a consumer of group {group} started during the reset (now {state}, {} members); the projection \
             is kept. Stop it, then run the reset again",
            members.len()
        );
    }
    tx.commit().await.context(UNFINISHED)?;
    db.pool.close().await;
    Ok(emptied.join(", "))
}

fn refuse_if_active(group: &str, state: &str, members: &[GroupMember]) -> anyhow::Result<()> {
    if !members.is_empty() {
        bail!(
            "refused: the group {group} has {} active member(s) ({}). Stop every process of this department \
             (its consumer group) first: a running consumer keeps its own positions and Kafka refuses \
             offset commits from outside a live group",
            members.len(),
            member_list(members)
        );
    }
    if !matches!(state, "Empty" | "Dead") {
        bail!("refused: the group {group} is {state}, not Empty; wait until its members have left");
    }
    Ok(())
}

/// The first offset at or after `at` (ms) per partition; `None` where no record is that late.
fn offsets_for_time(
    config: &ClientConfig,
    topic: &str,
    marks: &[Watermarks],
    at: i64,
) -> anyhow::Result<HashMap<i32, Option<i64>>> {
    let consumer: BaseConsumer = create(config)?;
    let mut query = TopicPartitionList::new();
    for w in marks {
        query.add_partition_offset(topic, w.partition, Offset::Offset(at))?;
    }
    let found = consumer
        .offsets_for_times(query, TIMEOUT)
        .context("cannot look offsets up by time")?;
    Ok(found
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(offset) => (e.partition(), Some(offset)),
            _ => (e.partition(), None),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks() -> Vec<Watermarks> {
        vec![
            Watermarks {
                partition: 0,
                low: 0,
                high: 130,
            },
            Watermarks {
                partition: 1,
                low: 5,
                high: 10,
            },
        ]
    }

    #[test]
    fn explicit_offsets_are_one_for_all_or_per_partition() {
        assert_eq!(parse_offsets("42"), Ok(ExplicitOffsets::All(42)));
        assert_eq!(
            parse_offsets("0:10, 2:0"),
            Ok(ExplicitOffsets::Partitions(BTreeMap::from([
                (0, 10),
                (2, 0)
            ])))
        );
        assert!(parse_offsets("-1").is_err());
        assert!(parse_offsets("0:1,0:2").unwrap_err().contains("twice"));
        assert!(parse_offsets("0:1,x").is_err());
        assert!(parse_offsets("a:1").is_err());
    }

    #[test]
    fn earliest_goes_to_each_log_start() {
        let committed = HashMap::from([(0, 120)]);
        let moves = plan_moves(&Target::Earliest, &marks(), &committed, &HashMap::new()).unwrap();
        assert_eq!(
            moves,
            [
                Move {
                    partition: 0,
                    low: 0,
                    high: 130,
                    current: Some(120),
                    target: 0
                },
                Move {
                    partition: 1,
                    low: 5,
                    high: 10,
                    current: None,
                    target: 5
                },
            ]
        );
        assert_eq!(
            (moves[0].replay(), moves[0].to_consume(), moves[0].skip()),
            (120, 130, 0)
        );
        assert_eq!(
            (moves[1].replay(), moves[1].to_consume(), moves[1].skip()),
            (0, 5, 0),
            "no commit: starts at the log start anyway"
        );
    }

    #[test]
    fn a_time_goes_to_the_first_offset_at_or_after_it_or_the_log_end() {
        let by_time = HashMap::from([(0, Some(100)), (1, None)]);
        let committed = HashMap::from([(0, 130), (1, 10)]);
        let moves = plan_moves(&Target::Datetime(0), &marks(), &committed, &by_time).unwrap();
        assert_eq!(
            moves.iter().map(|m| m.target).collect::<Vec<_>>(),
            [100, 10]
        );
        assert_eq!(moves.iter().map(Move::replay).collect::<Vec<_>>(), [30, 0]);
    }

    #[test]
    fn explicit_offsets_must_lie_in_the_log_and_leave_other_partitions_alone() {
        let committed = HashMap::from([(0, 20), (1, 6)]);
        let some = Target::Offsets(ExplicitOffsets::Partitions(BTreeMap::from([(0, 50)])));
        let moves = plan_moves(&some, &marks(), &committed, &HashMap::new()).unwrap();
        assert_eq!(
            moves,
            [Move {
                partition: 0,
                low: 0,
                high: 130,
                current: Some(20),
                target: 50
            }]
        );
        assert_eq!(moves[0].skip(), 30);
        let all = Target::Offsets(ExplicitOffsets::All(7));
        assert_eq!(
            plan_moves(&all, &marks(), &committed, &HashMap::new())
                .unwrap()
                .len(),
            2
        );
        let past_end = Target::Offsets(ExplicitOffsets::All(131));
        assert!(plan_moves(&past_end, &marks(), &committed, &HashMap::new())
            .unwrap_err()
            .contains("outside partition 0"));
        let before_start = Target::Offsets(ExplicitOffsets::Partitions(BTreeMap::from([(1, 4)])));
        assert!(
            plan_moves(&before_start, &marks(), &committed, &HashMap::new())
                .unwrap_err()
                .contains("from 5 to 10")
        );
        let unknown = Target::Offsets(ExplicitOffsets::Partitions(BTreeMap::from([(9, 0)])));
        assert!(plan_moves(&unknown, &marks(), &committed, &HashMap::new())
            .unwrap_err()
            .contains("partitions 0 to 1"));
    }

    #[test]
    fn a_dry_run_plan_shows_every_partition_what_is_emptied_and_how_to_execute() {
        let moves = plan_moves(
            &Target::Earliest,
            &marks(),
            &HashMap::from([(0, 120)]),
            &HashMap::new(),
        )
        .unwrap();
        let members = [GroupMember {
            client_id: "rdkafka".into(),
            host: "/127.0.0.1".into(),
        }];
        let plan = Plan {
            department: "warehouse",
            group: "warehouse",
            topic: "orders",
            target: &Target::Earliest,
            moves: &moves,
            clears: Some((&["reservations"], "sqlite://data/warehouse.db".into())),
            members: &members,
            execute: false,
            measured: Measured::NoRun,
        };
        let text = render_plan(&plan);
        let expected = "\
warehouse: reset group warehouse on topic orders to the earliest offsets (DRY RUN)
PARTITION      CURRENT       TARGET      LOG-END     REPLAY TO-CONSUME
        0          120            0          130        120        130
        1            -            5           10          0          5
    TOTAL                                               120        135
The next run consumes 135 events; no estimate yet: this projection has no measured run (a run of at least 1,000 records and 1 s of work measures one).
--execute also empties, in one transaction after moving the offsets: reservations and the edison_checkpoints rows of topic orders in sqlite://data/warehouse.db.
The group has active members (rdkafka@/127.0.0.1): a reset is refused until they stop.
Nothing changed. Run again with --execute to do it.
";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_forward_move_warns_of_what_it_skips() {
        let target = Target::Offsets(ExplicitOffsets::All(10));
        let moves = plan_moves(
            &target,
            &marks(),
            &HashMap::from([(0, 4), (1, 10)]),
            &HashMap::new(),
        )
        .unwrap();
        let plan = Plan {
            department: "billing",
            group: "g",
            topic: "t",
            target: &target,
            moves: &moves,
            clears: None,
            members: &[],
            execute: true,
            measured: Measured::Rate(2.0),
        };
        let text = render_plan(&plan);
        assert!(
            text.contains("The next run consumes 120 events; estimated: ~1 min at 2.0 events/s (measured on this projection's past runs)."),
            "from 10 to partition 0's log end at 130, partition 1 at its log end: {text}"
        );
        assert!(
            text.contains(
                "partition 0 moves forward past its committed offset: 6 events are never applied"
            ),
            "{text}"
        );
        assert!(!text.contains("partition 1 moves forward"), "{text}");
        assert!(text.contains("The projection is kept"), "{text}");
        assert!(
            !text.contains("DRY RUN") && !text.contains("--execute"),
            "{text}"
        );
    }

    #[test]
    fn only_an_empty_group_may_be_reset() {
        let member = GroupMember {
            client_id: "c".into(),
            host: "h".into(),
        };
        assert!(refuse_if_active("g", "Empty", &[]).is_ok());
        assert!(refuse_if_active("g", "Dead", &[]).is_ok());
        assert!(format!(
            "{}",
            refuse_if_active("g", "Stable", &[member]).unwrap_err()
        )
        .contains("1 active member(s) (c@h)"));
        assert!(refuse_if_active("g", "PreparingRebalance", &[]).is_err());
    }
}
