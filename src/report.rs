//! The runner's one voice: everything live-wasm itself says goes through the
//! [`Reporter`], which hands it to the status lines and to the JSON events;
//! the error that ends the session goes through [`fatal`], which needs no plan.
//!
//! Guest output goes straight to our stdout and stderr; this room never touches
//! it. With `--events json` the events take the place of the status lines on
//! stderr, so every line we write there is JSON; with `--quiet`, only the errors
//! that end a run are said.

mod events;
mod status;

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::build::Built;
use crate::plan::{EventsTarget, Plan};
use crate::run::{Note, RunReport, StopReason};
use crate::watch::Trigger;
use events::Events;
use status::StatusLines;

/// Says what happens in a session, in the forms the user asked for.
pub(crate) struct Reporter {
    status: StatusLines,
    events: Events,
}

impl Reporter {
    /// The voice of `plan`'s session (opening `--events-file`, if given).
    pub(crate) fn new(plan: &Plan) -> Result<Self> {
        let out: Option<Box<dyn Write + Send>> = match &plan.presentation.events {
            None => None,
            Some(EventsTarget::Stderr) => Some(Box::new(std::io::stderr())),
            Some(EventsTarget::File(path)) => {
                Some(Box::new(std::fs::File::create(path).with_context(
                    || format!("--events-file {}: cannot create it", path.display()),
                )?))
            }
        };
        let seed = plan.sandbox.determinism.map(|determinism| determinism.seed);
        Ok(Self {
            status: StatusLines::new(plan),
            events: Events::new(out, &plan.root, seed),
        })
    }

    /// Runs are deterministic (`--deterministic`), from `seed`: said once, at
    /// the start. (The events give the seed in each `run-started`.)
    pub(crate) fn deterministic(&mut self, seed: u64) {
        self.status.deterministic(seed);
    }

    /// The entry does not exist yet: say so once, and wait.
    pub(crate) fn waiting_for(&mut self, entry: &Path) {
        self.events.waiting_for(entry);
        self.status.waiting_for(entry);
    }

    /// A build is about to start.
    pub(crate) fn build_started(&mut self, run: u64, trigger: &Trigger) {
        self.events.build_started(run, trigger);
        self.status.run_started();
    }

    /// A build has ended: by itself, or `stopped`.
    pub(crate) fn build_finished(
        &mut self,
        run: u64,
        trigger: &Trigger,
        built: &Built,
        stopped: Option<StopReason>,
    ) {
        self.events.build_finished(run, built, stopped);
        self.status.build_finished(run, trigger, built, stopped);
    }

    /// A run is about to start.
    pub(crate) fn run_started(&mut self, run: u64, trigger: &Trigger) {
        self.events.run_started(run, trigger);
        self.status.run_started();
    }

    /// Something a run said on its way.
    pub(crate) fn note(&mut self, run: u64, note: &Note) {
        self.events.note(run, note);
        self.status.note(note);
    }

    /// Something the user should know; the session goes on.
    pub(crate) fn warning(&mut self, message: &str) {
        self.events.warning(message);
        self.status.warning(message);
    }

    /// A run has finished (after a build that took `built`, if there was one).
    /// Events first: whoever sees the status line finds them written.
    pub(crate) fn run_finished(
        &mut self,
        run: u64,
        trigger: &Trigger,
        built: Option<Duration>,
        report: &RunReport,
    ) {
        let description = report.describe();
        self.events.run_finished(run, built, report, &description);
        self.status
            .run_finished(run, trigger, built, report, &description);
    }
}

/// Says the error that ends the session, in the form the user asked for, with
/// or without the session's reporter (the plan may not have been made): a
/// `fatal` event when `json` (JSON events on stderr), else
/// `live-wasm: error: ...`; the chain of causes on one line.
pub fn fatal(err: &anyhow::Error, json: bool) {
    let message = format!("{err:#}");
    if json {
        events::fatal(&message);
    } else {
        status::fatal(&message);
    }
}

/// The longest line of ours shown whole, in bytes: messages quote guest data
/// (names, exports, trap text), which a guest can make megabytes long.
const MAX_LINE: usize = 4096;

/// A line of ours made safe for a terminal: control characters (escape
/// sequences could clear the screen or write the clipboard) and bidirectional
/// overrides are shown escaped (`\u{1b}`), and an over-long line is cut.
fn printable(line: &str) -> String {
    let mut shown = String::with_capacity(line.len().min(MAX_LINE) + 32);
    for (at, c) in line.char_indices() {
        if shown.len() >= MAX_LINE {
            let _ = write!(shown, "… ({} bytes more)", line.len() - at);
            break;
        }
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if (c.is_control() && c != '\t') || bidi {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// `text` cut to at most `max` bytes (at a character), saying how much was cut.
fn clipped(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let cut = (0..=max)
        .rev()
        .find(|at| text.is_char_boundary(*at))
        .unwrap_or(0);
    format!("{}… ({} bytes more)", &text[..cut], text.len() - cut).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_obeyed_and_long_lines_are_cut() {
        assert_eq!(printable("plain · text\t"), "plain · text\t");
        assert_eq!(
            printable("a\u{1b}]52;c;SGVsbG8=\u{7}b\u{1b}[2J\u{202e}"),
            "a\\u{1b}]52;c;SGVsbG8=\\u{7}b\\u{1b}[2J\\u{202e}"
        );
        let long = "x".repeat(MAX_LINE + 100);
        assert_eq!(
            printable(&long),
            format!("{}… (100 bytes more)", "x".repeat(MAX_LINE))
        );
        assert_eq!(clipped("ééé", 3), "é… (4 bytes more)");
        assert_eq!(clipped("ééé", 6), "ééé");
    }
}
