//! Progress reporting: the library ticks a [`Progress`]; only the binary draws a bar.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Something that wants to hear about progress. Implementations must be cheap and thread-safe.
pub trait Progress: Sync {
    /// `n` more units done.
    fn inc(&self, n: u64);
}

/// Progress nobody watches (tests, non-terminal stderr, JSON runs into pipes).
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn inc(&self, _n: u64) {}
}

/// An indicatif bar on stderr.
#[derive(Debug)]
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar of `total` units labelled `what`, drawn only when stderr is a terminal.
    pub fn new(total: u64, what: &str) -> Bar {
        let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb.set_message(what.to_string());
        Bar(pb)
    }

    /// Removes the bar from the screen.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
}
