//! The terminal live-wasm shares with the guest, under `--clear`: the screen
//! is cleared once a new run has something to show, not before, so the last
//! output stays in view while a save compiles (no blank screen, no flicker).
//! Whatever shows something first clears it: the guest's output or one of
//! our lines.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::plan::{EventsTarget, Plan};

/// Clears the screen, the scrollback, and puts the cursor home.
const CLEAR: &str = "\x1b[2J\x1b[3J\x1b[H";

/// Whether and when the screen is to be cleared.
#[derive(Debug, Default)]
pub(crate) struct Screen {
    /// `--clear`, on a terminal.
    clears: bool,
    /// The next thing shown clears the screen first.
    pending: AtomicBool,
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
        }
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

    /// Called before anything is shown: clears the screen if that is due.
    pub(crate) fn before_output(&self) {
        if self.clears && self.pending.swap(false, Ordering::AcqRel) {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(CLEAR.as_bytes());
            let _ = stderr.flush();
        }
    }
}
