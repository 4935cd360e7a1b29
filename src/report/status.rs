//! Status lines for people: one short line per run, and the error block when
//! something went wrong, prefixed `[live-wasm]` so they stand apart from guest
//! output.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anstyle::{AnsiColor, Style};

use crate::build::Built;
use crate::plan::{Determinism, EventsTarget, Plan};
use crate::run::{Description, Note, RunReport, StopReason, Verdict};
use crate::watch::Trigger;

/// Writes status lines for a session rooted at `root`.
pub(super) struct StatusLines {
    root: PathBuf,
    /// Where live-wasm was started (and `--build` runs): files outside the
    /// root are named from there.
    cwd: PathBuf,
    /// JSON events on stderr take the place of status lines.
    silent: bool,
    /// `--quiet`: only errors that end a run.
    quiet: bool,
    /// `--once` speaks only when something went wrong, as `wasmtime run` does.
    once: bool,
    clear: bool,
    colour: bool,
}

impl StatusLines {
    pub(super) fn new(plan: &Plan) -> Self {
        let colour =
            anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never;
        Self {
            root: plan.root.clone(),
            cwd: plan.cwd.clone(),
            silent: plan.presentation.events == Some(EventsTarget::Stderr),
            quiet: plan.presentation.quiet,
            once: plan.once,
            clear: plan.presentation.clear,
            colour,
        }
    }

    /// Whether lines that are not a run-ending error are said.
    fn chatty(&self) -> bool {
        !self.silent && !self.quiet
    }

    pub(super) fn waiting_for(&self, entry: &Path) {
        if self.chatty() {
            let name = self.name(entry);
            self.say(
                Tone::Plain,
                &format!(
                    "{name} does not exist yet; waiting for it to be created (Ctrl-C to quit)"
                ),
                "",
            );
        }
    }

    pub(super) fn deterministic(&self, seed: u64) {
        if self.chatty() && !self.once {
            let start = SystemTime::UNIX_EPOCH + Duration::from_secs(Determinism::WALL_CLOCK_START);
            let start = humantime::format_rfc3339_seconds(start);
            let line = format!("deterministic runs: seed {seed}, clocks from {start}");
            self.say(Tone::Plain, &line, "");
        }
    }

    pub(super) fn run_started(&self) {
        if self.clear && !self.silent && std::io::stderr().is_terminal() {
            // Clear the screen and the scrollback, cursor home.
            to_stderr("\x1b[2J\x1b[3J\x1b[H");
        }
    }

    pub(super) fn note(&self, note: &Note) {
        if !self.chatty() {
            return;
        }
        match note {
            Note::UseFailed { detail, .. } => {
                let (first, rest) = detail.split_once('\n').unwrap_or((detail, ""));
                self.say(Tone::Notice, first, rest);
            }
        }
    }

    pub(super) fn warning(&self, message: &str) {
        if self.chatty() {
            self.say(Tone::Notice, &format!("warning: {message}"), "");
        }
    }

    /// Says nothing of a build that went well: its run's line will.
    pub(super) fn build_finished(
        &self,
        number: u64,
        trigger: &Trigger,
        built: &Built,
        stopped: Option<StopReason>,
    ) {
        let (tone, words) = match (stopped, built.code) {
            (Some(StopReason::CtrlC), _) => (
                Tone::Notice,
                "build stopped by Ctrl-C; waiting for changes (Ctrl-C again to quit)".to_owned(),
            ),
            (Some(_), _) => (Tone::Notice, "build stopped by a change".to_owned()),
            (None, _) if built.success => return,
            (None, _) if let Some(error) = &built.error => {
                (Tone::Bad, format!("build failed: {error}"))
            }
            (None, Some(code)) => (Tone::Bad, format!("build failed: exit {code}")),
            (None, None) => (Tone::Bad, "build failed: ended by a signal".to_owned()),
        };
        if self.silent || (self.quiet && tone != Tone::Bad) {
            return;
        }
        let mut line = String::new();
        if !self.once {
            let _ = write!(line, "#{number} {}: ", self.trigger(trigger));
        }
        let _ = write!(line, "{words} · build {}", millis(built.duration));
        if tone == Tone::Bad && !self.once {
            line.push_str("; waiting for the next save");
        }
        self.say(tone, &line, "");
    }

    pub(super) fn run_finished(
        &self,
        number: u64,
        trigger: &Trigger,
        built: Option<Duration>,
        report: &RunReport,
        description: &Description,
    ) {
        let failed = description.verdict == Verdict::Failed;
        if self.silent || ((self.quiet || self.once) && !failed) {
            return;
        }
        let mut line = String::new();
        if !self.once {
            let _ = write!(line, "#{number} {}: ", self.trigger(trigger));
        }
        line.push_str(&description.summary);
        if !self.once {
            if let Some(built) = built {
                let _ = write!(line, " · build {}", millis(built));
            }
            let _ = write!(
                line,
                " · compile {} · run {}",
                millis(report.compile),
                millis(report.run)
            );
            let out_of_fuel = description.outcome == "out-of-fuel";
            if let Some(fuel) = report.fuel_used.filter(|_| !out_of_fuel) {
                let _ = write!(line, " · fuel {fuel}");
            }
        }
        let tone = match description.verdict {
            Verdict::Good => Tone::Good,
            Verdict::Stopped => Tone::Notice,
            Verdict::Failed => Tone::Bad,
        };
        self.say(tone, &line, &description.detail);
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

    /// Relative to the root when inside it, else to the current folder (a
    /// source beside an entry built into `out/`, a script beside its
    /// interpreter), else in full.
    fn name(&self, path: &Path) -> String {
        if path.starts_with(&self.root) {
            crate::names::relative(&self.root, path)
        } else {
            crate::names::relative(&self.cwd, path)
        }
    }

    /// One status line, coloured by `tone` when stderr takes colour (never with
    /// `NO_COLOR` or when piped: anstream decides, as for clap), and the lines
    /// of `detail` indented under it; all in one write.
    fn say(&self, tone: Tone, line: &str, detail: &str) {
        let (prefix, style) = match self.colour {
            true => (Style::new().dimmed(), tone.style()),
            false => (Style::new(), Style::new()),
        };
        let line = super::printable(line);
        let mut text = format!("{prefix}[live-wasm]{prefix:#} {style}{line}{style:#}\n");
        for detail in detail.lines() {
            let _ = writeln!(text, "  {}", super::printable(detail));
        }
        to_stderr(&text);
    }
}

/// How a status line should catch the eye.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    Plain,
    Good,
    Notice,
    Bad,
}

impl Tone {
    fn style(self) -> Style {
        match self {
            Tone::Plain => Style::new(),
            Tone::Good => AnsiColor::Green.on_default(),
            Tone::Notice => AnsiColor::Yellow.on_default(),
            Tone::Bad => AnsiColor::Red.on_default().bold(),
        }
    }
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

/// `live-wasm: error: ...`: the session could not start, or broke. Not a
/// status line: it ends the program, so it stands out as the usual
/// `program: error:` line, and says it even under `--quiet`.
pub(super) fn fatal(message: &str) {
    let lines: Vec<String> = message.lines().map(super::printable).collect();
    to_stderr(&format!("live-wasm: error: {}\n", lines.join("\n")));
}

/// Writes `text` (whole lines) to stderr in one `write`, so a line of ours is
/// never cut by the guest's stderr output written at the same moment.
fn to_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
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
    fn names_are_relative_to_the_root_then_to_the_current_folder() {
        let mut status = StatusLines {
            root: PathBuf::from("/p/out"),
            cwd: PathBuf::from("/elsewhere"),
            silent: false,
            quiet: false,
            once: false,
            clear: false,
            colour: false,
        };
        let changed = Trigger::Changed(vec!["/p/out/lib/m.wat".into(), "/p/src/main.c".into()]);
        assert_eq!(status.trigger(&changed), "lib/m.wat, /p/src/main.c changed");
        status.cwd = PathBuf::from("/p");
        assert_eq!(status.trigger(&changed), "lib/m.wat, src/main.c changed");
    }
}
