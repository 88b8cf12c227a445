//! How far a run has got: knowing when a `--until-caught-up` run is done, and the progress bar
//! it shows on a terminal while the group is far behind.

use std::collections::HashMap;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The high watermarks taken at start, and how far the group has got on each partition.
#[derive(Debug)]
pub struct CatchUp {
    /// Partition → offset that counts as caught up (the high watermark at start).
    targets: HashMap<i32, i64>,
    /// Partition → next offset after what this process has applied or dead-lettered.
    applied: HashMap<i32, i64>,
}

impl CatchUp {
    /// `watermarks` holds (partition, low, target) per partition: a partition whose target is
    /// not above its low watermark has nothing to apply.
    pub fn new(watermarks: impl IntoIterator<Item = (i32, i64, i64)>) -> CatchUp {
        let targets = watermarks
            .into_iter()
            .filter(|(_, low, high)| high > low)
            .map(|(partition, _, high)| (partition, high))
            .collect();
        CatchUp { targets, applied: HashMap::new() }
    }

    pub fn record_applied(&mut self, partition: i32, next_offset: i64) {
        let entry = self.applied.entry(partition).or_insert(next_offset);
        *entry = (*entry).max(next_offset);
    }

    /// Partitions this process has not itself applied up to their target. Whether the group has
    /// (an earlier run, or another member) is for the broker's committed offsets to tell.
    pub fn pending(&self) -> Vec<i32> {
        let mut pending: Vec<i32> = self
            .targets
            .iter()
            .filter(|(partition, target)| self.applied.get(partition).is_none_or(|next| next < target))
            .map(|(partition, _)| *partition)
            .collect();
        pending.sort_unstable();
        pending
    }

    /// Whether `offsets` (the group's committed offsets, or the consumer's position) reach every
    /// pending partition's target.
    pub fn reached_by(&self, offsets: &HashMap<i32, i64>) -> bool {
        self.pending()
            .iter()
            .all(|partition| offsets.get(partition).is_some_and(|offset| *offset >= self.targets[partition]))
    }
}

/// The bar shows only when the group starts more than this many events behind.
pub const SHOW_ABOVE: i64 = 5000;

/// A bar over the events the group was behind at start, ticked by the records of each applied
/// batch, with rate and ETA. Hidden off a terminal (stderr), when not far behind, and once the
/// run has consumed that many. With several processes in the group each consumes a share, so
/// the bar is an estimate there.
pub struct LagBar(Option<ProgressBar>);

impl LagBar {
    pub fn hidden() -> LagBar {
        LagBar(None)
    }

    /// Whether a bar could show: stderr is a terminal. Saves the broker calls otherwise.
    pub fn wanted() -> bool {
        std::io::stderr().is_terminal()
    }

    /// A bar for a group `lag` events behind, if that is far enough to show one.
    pub fn behind(lag: i64) -> LagBar {
        if lag <= SHOW_ABOVE {
            return LagBar::hidden();
        }
        let style = ProgressStyle::with_template(
            "catching up {wide_bar} {human_pos}/{human_len} events, {per_sec:0}, ETA {eta}",
        )
        .expect("a valid template");
        let bar = ProgressBar::with_draw_target(Some(lag as u64), ProgressDrawTarget::stderr()).with_style(style);
        LagBar(Some(bar))
    }

    /// Moves the bar to `consumed` records since start; clears it once it reaches its end.
    pub fn advance_to(&self, consumed: u64) {
        let Some(bar) = &self.0 else { return };
        let end = bar.length().unwrap_or(0);
        bar.set_position(consumed.min(end));
        if consumed >= end && !bar.is_finished() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for LagBar {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_partitions_are_never_pending() {
        let catch_up = CatchUp::new([(0, 0, 0), (1, 5, 5)]);
        assert!(catch_up.pending().is_empty());
    }

    #[test]
    fn applied_or_committed_progress_completes_a_partition() {
        let mut catch_up = CatchUp::new([(0, 0, 10), (1, 0, 4)]);
        catch_up.record_applied(0, 9);
        assert_eq!(catch_up.pending(), vec![0, 1]);
        catch_up.record_applied(0, 10);
        assert_eq!(catch_up.pending(), vec![1]);
        assert!(!catch_up.reached_by(&HashMap::from([(1, 3)])));
        assert!(catch_up.reached_by(&HashMap::from([(1, 4)])));
    }
}
