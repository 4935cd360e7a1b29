//! The runner's own voice: short status lines and error blocks, on stderr.
//!
//! Guest output goes straight to our stdout and stderr; this module never
//! touches it. One line per run when things go well, the error block when not.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::interrupt::StopReason;
use crate::limits::Limits;
use crate::outcome::{Frame, Outcome, SourcePlace, trap_words};
use crate::plan::{EventsTarget, Plan, Presentation};
use crate::run::RunReport;

/// What started a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The first run of the session.
    Start,
    /// These watched files changed.
    Changed(Vec<PathBuf>),
}

impl Trigger {
    /// Adds the files of a later change to a run that has not started yet.
    pub fn merge(self, changed: Vec<PathBuf>) -> Trigger {
        match self {
            Trigger::Start => Trigger::Start,
            Trigger::Changed(mut files) => {
                for file in changed {
                    if !files.contains(&file) {
                        files.push(file);
                    }
                }
                Trigger::Changed(files)
            }
        }
    }
}

/// Writes status lines for a session rooted at `root`.
pub struct Reporter {
    root: PathBuf,
    presentation: Presentation,
    limits: Limits,
    /// `--once` speaks only when something went wrong, as `wasmtime run` does.
    once: bool,
}

impl Reporter {
    /// A reporter for `plan`'s session; `once` for `--once`.
    pub fn new(plan: &Plan, once: bool) -> Self {
        Self {
            root: plan.root.clone(),
            presentation: plan.presentation.clone(),
            limits: plan.limits,
            once,
        }
    }

    /// JSON events on stderr take the place of status lines.
    fn silent(&self) -> bool {
        self.presentation.events == Some(EventsTarget::Stderr)
    }

    /// The entry does not exist yet: say so once, and wait.
    pub fn waiting_for(&self, entry: &Path) {
        if self.silent() {
            return;
        }
        status(
            Tone::Plain,
            &format!(
                "{} does not exist yet; waiting for it to be created (Ctrl-C to quit)",
                self.name(entry)
            ),
        );
    }

    /// Called just before a run starts.
    pub fn run_starting(&self) {
        if self.presentation.clear && std::io::stderr().is_terminal() {
            // Clear the screen and the scrollback, cursor home.
            eprint!("\x1b[2J\x1b[3J\x1b[H");
        }
    }

    /// The summary of a finished run.
    pub fn run_finished(&self, number: u64, trigger: &Trigger, report: &RunReport) {
        let failed = report.outcome.is_failure() || report.memory_refused.is_some();
        let quiet = self.presentation.quiet || self.once;
        if (quiet && !failed) || self.silent() {
            return;
        }
        let mut line = if self.once {
            String::new()
        } else {
            format!("#{number} {}: ", self.trigger(trigger))
        };
        let mut details = String::new();
        match &report.outcome {
            Outcome::OutOfFuel => {
                let budget = self.limits.fuel.unwrap_or_default();
                let _ = write!(
                    line,
                    "out of fuel: used all {budget} units (--fuel); raise it, or look for an endless loop"
                );
            }
            Outcome::Success => line.push_str("ok"),
            Outcome::Exit(code) => {
                let _ = write!(line, "exit {code}");
            }
            Outcome::Trap { kind, frames } => {
                let _ = write!(line, "trap: {}", trap_words(*kind));
                details = self.backtrace(frames);
            }
            Outcome::Stopped(StopReason::Change) => line.push_str("stopped by a change"),
            Outcome::Stopped(StopReason::CtrlC) => {
                line.push_str("stopped by Ctrl-C; waiting for changes (Ctrl-C again to quit)")
            }
            Outcome::Stopped(StopReason::Timeout) => {
                let timeout = self.limits.timeout.unwrap_or_default();
                let _ = write!(
                    line,
                    "timed out: stopped after {} (--timeout)",
                    humantime::format_duration(timeout)
                );
            }
            Outcome::Failed(err) => {
                line.push_str("error");
                details = format!("{err:#}");
            }
        }
        if !self.once {
            let _ = write!(
                line,
                " · compile {} · run {}",
                millis(report.compile),
                millis(report.run)
            );
            let out_of_fuel = matches!(report.outcome, Outcome::OutOfFuel);
            if let Some(fuel) = report.fuel_used.filter(|_| !out_of_fuel) {
                let _ = write!(line, " · fuel {fuel}");
            }
        }
        if let Some(refusal) = report.memory_refused {
            details.insert_str(
                0,
                &format!(
                    "memory: the run asked for {} in all, over --max-memory {} \
                     (a module needing it fails to instantiate; memory.grow returns -1)\n",
                    size(refusal.wanted),
                    size(refusal.limit)
                ),
            );
        }
        let tone = match &report.outcome {
            _ if failed => Tone::Bad,
            Outcome::Stopped(_) => Tone::Notice,
            _ => Tone::Good,
        };
        status(tone, &line);
        if !details.is_empty() {
            let mut stderr = std::io::stderr().lock();
            for detail in details.lines() {
                let _ = writeln!(stderr, "  {detail}");
            }
        }
    }

    /// A problem of the watcher itself (the session goes on).
    pub fn watch_error(&self, err: &notify::Error) {
        self.warning(&format!("file watcher: {err}"));
    }

    /// Something the user should know; the session goes on.
    pub fn warning(&self, message: &str) {
        status(Tone::Notice, &format!("warning: {message}"));
    }

    fn trigger(&self, trigger: &Trigger) -> String {
        match trigger {
            Trigger::Start => "start".to_owned(),
            Trigger::Changed(files) => {
                let names: Vec<String> = files.iter().map(|file| self.name(file)).collect();
                format!("{} changed", names.join(", "))
            }
        }
    }

    /// A trap's backtrace, innermost first: `0: divide (main @ 0x33) at main.wat:4:5`.
    fn backtrace(&self, frames: &[Frame]) -> String {
        let mut text = String::new();
        if !frames.is_empty() {
            text.push_str("wasm backtrace:\n");
        }
        for (index, frame) in frames.iter().enumerate() {
            let _ = write!(text, "  {index}: {} ({}", frame.function, frame.module);
            if let Some(offset) = frame.offset {
                let _ = write!(text, " @ {offset:#x}");
            }
            text.push(')');
            if let Some(source) = &frame.source {
                let file = self.name(Path::new(&source.file));
                let place = SourcePlace {
                    file,
                    ..source.clone()
                };
                let _ = write!(text, " at {place}");
            }
            text.push('\n');
        }
        text
    }

    fn name(&self, path: &Path) -> String {
        crate::names::relative(&self.root, path)
    }
}

/// The detail of a failed `live.use` (the guest gets a code and goes on).
pub fn use_failed(message: &str) {
    status(Tone::Notice, message);
}

/// One status line, prefixed so it stands apart from guest output.
///
/// Coloured by `tone` when stderr is a terminal, never with `NO_COLOR` or when
/// piped (anstream decides, as clap does).
fn status(tone: Tone, line: &str) {
    use anstyle::{AnsiColor, Style};
    let prefix = Style::new().dimmed();
    let style = match tone {
        Tone::Plain => Style::new(),
        Tone::Good => AnsiColor::Green.on_default(),
        Tone::Notice => AnsiColor::Yellow.on_default(),
        Tone::Bad => AnsiColor::Red.on_default().bold(),
    };
    let mut stderr = anstream::stderr().lock();
    let _ = writeln!(
        stderr,
        "{prefix}[live-wasm]{prefix:#} {style}{line}{style:#}"
    );
}

/// How a status line should catch the eye.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    Plain,
    Good,
    Notice,
    Bad,
}

/// A size for humans: `640 B`, `64.0 KiB`, `16.0 MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration for humans: `0.84 ms`, `12.3 ms`, `1.20 s`.
fn millis(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(millis(Duration::from_micros(840)), "0.84 ms");
        assert_eq!(millis(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(millis(Duration::from_millis(1_200)), "1.20 s");
    }

    #[test]
    fn triggers_merge_without_repeats() {
        let a = PathBuf::from("/r/a.wat");
        let b = PathBuf::from("/r/b.wat");
        let merged = Trigger::Changed(vec![a.clone()]).merge(vec![b.clone(), a.clone()]);
        assert_eq!(merged, Trigger::Changed(vec![a, b]));
        assert_eq!(Trigger::Start.merge(vec![]), Trigger::Start);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(640), "640 B");
        assert_eq!(size(65536), "64.0 KiB");
        assert_eq!(size(16 << 20), "16.0 MiB");
    }

    #[test]
    fn names_are_relative_to_the_root() {
        let reporter = Reporter {
            root: PathBuf::from("/r"),
            presentation: Presentation::default(),
            limits: Limits::default(),
            once: false,
        };
        let changed = Trigger::Changed(vec!["/r/lib/m.wat".into(), "/elsewhere/x".into()]);
        assert_eq!(
            reporter.trigger(&changed),
            "lib/m.wat, /elsewhere/x changed"
        );
    }
}
