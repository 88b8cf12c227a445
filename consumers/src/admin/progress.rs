//! The progress bar `run` shows on a terminal while the group is far behind.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
