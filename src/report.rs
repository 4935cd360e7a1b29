//! The runner's one voice: everything live-wasm itself says goes through the
//! [`Reporter`], which hands it to the status lines and to the JSON events;
//! the error that ends the session goes through [`fatal`], which needs no plan.
//!
//! Guest output goes straight to our stdout and stderr; this room never touches
//! it. Nor does it draw the progress line (`progress.rs`), which must move
//! while nothing else happens; it gives that line's `progress` events. With `--events json` the events take the place of the status lines on
//! stderr, so every line we write there is JSON; with `--quiet`, only the errors
//! that end a run are said.

mod events;
mod status;

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::build::Built;
use crate::diff::{self, Compared, Diff};
use crate::plan::{DiffMode, EventsTarget, Plan};
use crate::progress::{Progress, Shown};
use crate::run::{Note, RunReport, Served, StopReason, Verdict};
use crate::screen::Screen;
use crate::transcript::Transcript;
use crate::watch::Trigger;
use events::Events;
use status::StatusLines;

/// Says what happens in a session, in the forms the user asked for.
pub(crate) struct Reporter {
    status: StatusLines,
    events: Events,
    screen: Arc<Screen>,
    /// `--diff`, and how.
    diff: Option<DiffMode>,
    /// The last run that ran: what `--diff` compares with, what `--clear`
    /// shows again when a save does not get as far as running.
    last_ran: Option<LastRun>,
    /// The run whose build cleared the screen: its run does not clear again.
    cleared_by_build: Option<u64>,
    /// `--serve`: where, and the version answering (the run that made it).
    serving: Option<(String, Option<u64>)>,
}

/// A run that ran, as the next one is compared with it.
struct LastRun {
    run: u64,
    output: Transcript,
    ended: String,
    fuel: Option<u64>,
}

impl LastRun {
    fn compared(&self) -> Compared<'_> {
        Compared {
            run: self.run,
            output: &self.output,
            ended: &self.ended,
            fuel: self.fuel,
        }
    }
}

impl Reporter {
    /// The voice of `plan`'s session (opening `--events-file`, if given),
    /// sharing `screen` with the guests.
    pub(crate) fn new(plan: &Plan, screen: Arc<Screen>) -> Result<Self> {
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
        let events_screen =
            (plan.presentation.events == Some(EventsTarget::Stderr)).then(|| Arc::clone(&screen));
        Ok(Self {
            status: StatusLines::new(plan, Arc::clone(&screen)),
            events: Events::new(out, events_screen, &plan.root, seed),
            screen,
            diff: plan.presentation.diff,
            last_ran: None,
            cleared_by_build: None,
            serving: None,
        })
    }

    /// Runs are deterministic (`--deterministic`), from `seed`: said once, at
    /// the start. (The events give the seed in each `run-started`.)
    pub(crate) fn deterministic(&mut self, seed: u64) {
        self.status.deterministic(seed);
    }

    /// Whether the next run's output is to be shown as it comes: not under
    /// `--diff=only` once there is a run to compare it with.
    pub(crate) fn shows_output(&self) -> bool {
        self.diff != Some(DiffMode::Only) || self.last_ran.is_none()
    }

    /// The entry does not exist yet: say so once, and wait.
    pub(crate) fn waiting_for(&mut self, entry: &Path) {
        self.events.waiting_for(entry);
        self.status.waiting_for(entry);
    }

    /// A build is about to start: under `--clear` the screen is cleared at
    /// once, since what the build prints goes straight to the terminal.
    pub(crate) fn build_started(&mut self, run: u64, trigger: &Trigger) {
        self.events.build_started(run, trigger);
        self.screen.clear_before_next();
        self.screen.before_output();
        self.cleared_by_build = Some(run);
    }

    /// The progress line, which says what takes long on the terminal; its
    /// stages come back to be said as `progress` events ([`Self::progress`]).
    pub(crate) fn progress_line(&self) -> Arc<Progress> {
        Arc::clone(self.screen.progress())
    }

    /// Something of run `run` takes long (a build, a compile): a `progress`
    /// event. (The line on the terminal is the progress line's own.)
    pub(crate) fn progress(&mut self, run: u64, shown: &Shown) {
        self.events.progress(run, shown);
    }

    /// The `progress` events of a stage that has ended, not yet said: before
    /// what follows it.
    fn progress_so_far(&mut self, run: u64) {
        let progress = Arc::clone(self.screen.progress());
        for shown in progress.shown().try_iter() {
            self.events.progress(run, &shown);
        }
    }

    /// A build has ended: by itself, or `stopped`.
    pub(crate) fn build_finished(
        &mut self,
        run: u64,
        trigger: &Trigger,
        built: &Built,
        stopped: Option<StopReason>,
    ) {
        self.progress_so_far(run);
        self.events.build_finished(run, built, stopped);
        self.status.build_finished(run, trigger, built, stopped);
        if stopped.is_none() && !built.success {
            self.show_last_output_again();
        }
    }

    /// A run is about to start.
    pub(crate) fn run_started(&mut self, run: u64, trigger: &Trigger) {
        self.events.run_started(run, trigger);
        if self.cleared_by_build != Some(run) {
            self.screen.clear_before_next();
        }
    }

    /// Something a run said on its way.
    pub(crate) fn note(&mut self, run: u64, note: &Note) {
        self.events.note(run, note);
        self.status.note(note);
    }

    /// `--serve` listens at `url`: said first.
    pub(crate) fn listening(&mut self, url: &str) {
        self.events.listening(url);
        self.status.listening(url);
        self.serving = Some((url.to_owned(), None));
    }

    /// One request answered.
    pub(crate) fn request(&mut self, served: &Served) {
        self.events.request(served);
        self.status.request(served);
    }

    /// Something the user should know; the session goes on.
    pub(crate) fn warning(&mut self, message: &str) {
        self.events.warning(message);
        self.status.warning(message);
    }

    /// A run has finished (after a build that took `built`, if there was one),
    /// having printed `output` (when noted). Events first: whoever sees the
    /// status line finds them written.
    pub(crate) fn run_finished(
        &mut self,
        run: u64,
        trigger: &Trigger,
        built: Option<Duration>,
        report: &RunReport,
        output: Option<Transcript>,
    ) {
        self.progress_so_far(run);
        let mut description = report.describe();
        if let Some((url, version)) = &mut self.serving {
            match report.serving {
                Some(made) => {
                    *version = Some(made);
                    description.summary = format!("serving {url} (version {made})");
                }
                None => {
                    if let Some(version) =
                        version.filter(|_| description.verdict == Verdict::Failed)
                    {
                        let _ = write!(description.summary, "; still serving version {version}");
                    }
                }
            }
        }
        // It ran, whatever its end, unless it could not get going or was
        // stopped part way (its output is not the program's).
        let ran = description.outcome != "error" && description.verdict != Verdict::Stopped;
        let diff: Option<Diff> = match (self.diff, &self.last_ran, &output) {
            (Some(_), Some(last), Some(output)) if ran => {
                let now = Compared {
                    run,
                    output,
                    ended: &description.summary,
                    fuel: report.fuel_used,
                };
                Some(diff::compare(&last.compared(), &now))
            }
            _ => None,
        };
        (self.events).run_finished(run, built, report, &description, diff.as_ref());
        if let (Some((url, _)), Some(_)) = (&self.serving, report.serving) {
            self.events.serving(run, url);
        }
        self.status
            .run_finished(run, trigger, built, report, &description, diff.as_ref());
        match output {
            Some(output) if ran => {
                self.last_ran = Some(LastRun {
                    run,
                    output,
                    ended: description.summary,
                    fuel: report.fuel_used,
                });
            }
            Some(output) if description.outcome == "error" && output.is_empty() => {
                self.show_last_output_again();
            }
            _ => {}
        }
    }

    /// Under `--clear`, after a save that did not get as far as running: the
    /// last run's output again, under the error, marked stale.
    fn show_last_output_again(&self) {
        let Some(last) = self.last_ran.as_ref().filter(|_| self.screen.clears()) else {
            return;
        };
        self.status.stale(last.run, &last.output);
        crate::run::show_again(&last.output, &self.screen);
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
