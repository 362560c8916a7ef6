//! The progress bar people see: an indicatif bar on stderr, drawn only when stderr is a
//! terminal and `--quiet` is not given (`show_progress`). The library only ticks a
//! [`Progress`]; this is the binary's way of showing it.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::Progress;

/// An indicatif bar on stderr.
#[derive(Debug)]
pub(super) struct Bar(ProgressBar);

impl Bar {
    /// A bar of `total` units labelled `what`, drawn only when stderr is a terminal.
    pub(super) fn new(total: u64, what: &str) -> Bar {
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
    pub(super) fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
}
