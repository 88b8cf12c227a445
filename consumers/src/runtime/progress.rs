//! Knowing when a `--until-caught-up` run is done.

use std::collections::HashMap;

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

    /// Whether the group's committed offsets reach every pending partition's target.
    pub fn reached_by(&self, committed: &HashMap<i32, i64>) -> bool {
        self.pending()
            .iter()
            .all(|partition| committed.get(partition).is_some_and(|offset| *offset >= self.targets[partition]))
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
