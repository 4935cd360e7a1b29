//! The terminal live-wasm shares with the guest, under `--clear`: the screen
//! is cleared once a new run has something to show, not before, so the last
//! output stays in view while a save compiles (no blank screen, no flicker).
//! Whatever shows something first clears it: the guest's output or one of
//! our lines. It also holds the [`Progress`] line, which everything written
//! to the terminal erases first.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::plan::{EventsTarget, Plan};
use crate::progress::Progress;

/// Clears the screen, the scrollback, and puts the cursor home.
const CLEAR: &str = "\x1b[2J\x1b[3J\x1b[H";

/// Whether and when the screen is to be cleared.
#[derive(Debug, Default)]
pub(crate) struct Screen {
    /// `--clear`, on a terminal.
    clears: bool,
    /// The next thing shown clears the screen first.
    pending: AtomicBool,
    /// The line that says what takes long.
    progress: Arc<Progress>,
}

impl Screen {
    /// The screen of `plan`'s session: cleared for each run under `--clear`
    /// when our stderr is a terminal that shows status lines; else never
    /// touched.
    pub(crate) fn new(plan: &Plan) -> Self {
        let presentation = &plan.presentation;
        Self {
            clears: presentation.clear
                && presentation.events != Some(EventsTarget::Stderr)
                && std::io::stderr().is_terminal(),
            pending: AtomicBool::new(false),
            progress: Arc::new(Progress::new(plan)),
        }
    }

    /// The progress line.
    pub(crate) fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    /// Whether the screen is cleared for each run.
    pub(crate) fn clears(&self) -> bool {
        self.clears
    }

    /// The next thing shown clears the screen first.
    pub(crate) fn clear_before_next(&self) {
        if self.clears {
            self.pending.store(true, Ordering::Release);
        }
    }

    /// Called before anything else (a guest) shows something: clears the
    /// screen if that is due, and erases the progress line.
    pub(crate) fn before_output(&self) {
        if self.clear_due() {
            self.progress.write(CLEAR.as_bytes());
        } else {
            self.progress.erase();
        }
    }

    /// A guest showed `bytes` on the terminal (after [`Self::before_output`]).
    pub(crate) fn guest_showed(&self, bytes: &[u8]) {
        self.progress.wrote(bytes);
    }

    /// Shows lines of ours on stderr: after the clear, if it is due, in place
    /// of the progress line; in one write.
    pub(crate) fn show(&self, text: &str) {
        if self.clear_due() {
            self.progress.write(format!("{CLEAR}{text}").as_bytes());
        } else {
            self.progress.write(text.as_bytes());
        }
    }

    fn clear_due(&self) -> bool {
        self.clears && self.pending.swap(false, Ordering::AcqRel)
    }
}
