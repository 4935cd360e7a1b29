//! Status lines for people: one short line per run, and the error block when
//! something went wrong, prefixed `[live-wasm]` so they stand apart from guest
//! output.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anstyle::{AnsiColor, Style};

use crate::build::Built;
use crate::diff::{Change, Diff, StreamDiff};
use crate::plan::{BuildPlan, Determinism, EventsTarget, Plan};
use crate::run::{Description, Note, RunReport, Served, StopReason, Verdict};
use crate::screen::Screen;
use crate::transcript::{TEXT_BUDGET, Transcript};
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
    /// Cleared, under `--clear`, before the first line of a run.
    screen: Arc<Screen>,
    colour: bool,
    /// `--build`: the command and its folder, for the hint of a build the
    /// shell could not run.
    build: Option<BuildPlan>,
}

impl StatusLines {
    pub(super) fn new(plan: &Plan, screen: Arc<Screen>) -> Self {
        let colour =
            anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never;
        Self {
            root: plan.root.clone(),
            cwd: plan.cwd.clone(),
            silent: plan.presentation.events == Some(EventsTarget::Stderr),
            quiet: plan.presentation.quiet,
            once: plan.once,
            screen,
            colour,
            build: plan.build.clone(),
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

    /// `--serve`: where the server listens, said first.
    pub(super) fn listening(&self, url: &str) {
        if self.chatty() {
            self.say(
                Tone::Plain,
                &format!("listening on {url}; each good version answers from the next request"),
                "",
            );
        }
    }

    /// One request answered (`GET / 200 0.41 ms (version 3)`); under
    /// `--quiet` only those where the guest failed.
    pub(super) fn request(&self, served: &Served) {
        let failed = served.failure.is_some();
        if self.silent || (self.quiet && !failed) {
            return;
        }
        let mut line = format!(
            "{} {} {} {} (version {})",
            served.method,
            served.path,
            served.status,
            millis(served.elapsed),
            served.version
        );
        let (tone, detail) = match &served.failure {
            Some(failure) => {
                let _ = write!(line, ": {}", failure.summary);
                let tone = match failure.verdict {
                    Verdict::Stopped => Tone::Notice,
                    _ => Tone::Bad,
                };
                (tone, failure.detail.as_str())
            }
            None if served.status >= 500 => (Tone::Bad, ""),
            None if served.status >= 400 => (Tone::Notice, ""),
            None => (Tone::Plain, ""),
        };
        self.say(tone, &line, detail);
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
        let hint = (self.build.as_ref())
            .filter(|_| stopped.is_none())
            .and_then(|build| crate::build::hint(&build.command, &build.dir, built.code));
        self.say(tone, &line, hint.as_deref().unwrap_or_default());
    }

    pub(super) fn run_finished(
        &self,
        number: u64,
        trigger: &Trigger,
        built: Option<Duration>,
        report: &RunReport,
        description: &Description,
        diff: Option<&Diff>,
    ) {
        let failed = description.verdict == Verdict::Failed;
        if self.silent {
            return;
        }
        if (self.quiet || self.once) && !failed {
            // `--quiet --diff`: the changed lines, which take the place of
            // the output under `--diff=only`, are still shown.
            if let Some(diff) = diff.filter(|diff| self.quiet && !diff.output_unchanged()) {
                self.screen.show(&self.diff_lines(diff));
            }
            return;
        }
        let mut line = String::new();
        if !self.once {
            let _ = write!(line, "#{number} {}: ", self.trigger(trigger));
        }
        line.push_str(&description.summary);
        if let Some(before) = diff.and_then(|diff| diff.ended_before.as_ref()) {
            let _ = write!(line, " (#{} {before})", diff.map_or(0, |diff| diff.against));
        }
        if let Some(diff) = diff {
            let _ = write!(line, " · {}", changed_lines(diff));
        }
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
                if let Some((before, now)) = diff.and_then(|diff| diff.fuel) {
                    let _ = write!(line, " ({:+})", i128::from(now) - i128::from(before));
                }
            }
        }
        let tone = match description.verdict {
            Verdict::Good => Tone::Good,
            Verdict::Stopped => Tone::Notice,
            Verdict::Failed => Tone::Bad,
        };
        let diff_lines = diff.map(|diff| self.diff_lines(diff)).unwrap_or_default();
        self.say_with(tone, &line, &description.detail, &diff_lines);
    }

    /// Under `--clear`, before the last run's output shown again: it is stale.
    pub(super) fn stale(&self, run: u64, output: &Transcript) {
        if self.silent {
            return;
        }
        let mut line =
            format!("stale: the output of #{run}, the last run, until a save runs again");
        if let Some((_, dropped)) = output.replay().filter(|(_, dropped)| *dropped > 0) {
            let _ = write!(line, " (its first {dropped} bytes are not kept)");
        }
        self.say(Tone::Notice, &line, "");
    }

    /// The changed lines of `diff`, under the status line: a little context
    /// around each change, the unchanged stretches folded; the guest's text
    /// made safe, its own colours dropped, ours added on a terminal.
    fn diff_lines(&self, diff: &Diff) -> String {
        let mut text = String::new();
        let both = !diff.stderr.unchanged();
        for (name, stream) in [("stdout", &diff.stdout), ("stderr", &diff.stderr)] {
            if stream.unchanged() {
                continue;
            }
            if both {
                let _ = writeln!(text, "  {name}:");
            }
            self.stream_lines(&mut text, name, stream);
        }
        text
    }

    fn stream_lines(&self, text: &mut String, name: &str, stream: &StreamDiff) {
        let fold = |text: &mut String, lines: usize| {
            if lines > 0 {
                let s = if lines == 1 { "" } else { "s" };
                let _ = writeln!(text, "  ⋯ {lines} unchanged line{s}");
            }
        };
        for hunk in &stream.hunks {
            fold(text, hunk.unchanged_before);
            for line in &hunk.lines {
                let shown = match &line.text {
                    Some(shown) => {
                        super::printable(&anstream::adapter::strip_str(shown).to_string())
                    }
                    None => format!(
                        "(line {}: not kept, past the first {} MiB of {name})",
                        line.number,
                        TEXT_BUDGET >> 20
                    ),
                };
                let style = match (self.colour, line.change) {
                    (false, _) | (true, Change::Same) => Style::new(),
                    (true, Change::Removed) => AnsiColor::Red.on_default(),
                    (true, Change::Added) => AnsiColor::Green.on_default(),
                };
                let _ = writeln!(text, "  {style}{} {shown}{style:#}", line.change.mark());
            }
        }
        fold(text, stream.unchanged_after);
        if stream.not_shown > 0 {
            let _ = writeln!(text, "  ⋯ and {} more changed lines", stream.not_shown);
        }
        if stream.coarse {
            let _ = writeln!(
                text,
                "  (compared coarsely: too different to compare in time)"
            );
        }
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
        self.say_with(tone, line, detail, "");
    }

    /// [`Self::say`], then `more`: lines of ours, made safe already.
    fn say_with(&self, tone: Tone, line: &str, detail: &str, more: &str) {
        let (prefix, style) = match self.colour {
            true => (Style::new().dimmed(), tone.style()),
            false => (Style::new(), Style::new()),
        };
        let line = super::printable(line);
        // On a line of its own, even after output that did not end its line
        // (`Screen::show`).
        let mut text = format!("{prefix}[live-wasm]{prefix:#} {style}{line}{style:#}\n");
        for detail in detail.lines() {
            let _ = writeln!(text, "  {}", super::printable(detail));
        }
        text.push_str(more);
        self.screen.show(&text);
    }
}

/// The status line's words for how the output changed.
fn changed_lines(diff: &Diff) -> String {
    if diff.output_unchanged() {
        return "output unchanged".to_owned();
    }
    let mut words = Vec::new();
    for (name, stream) in [("stdout", &diff.stdout), ("stderr", &diff.stderr)] {
        if !stream.unchanged() {
            words.push(format!("{name} +{} -{}", stream.added, stream.removed));
        }
    }
    format!("{} against #{}", words.join(", "), diff.against)
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
            screen: Arc::default(),
            colour: false,
            build: None,
        };
        let changed = Trigger::Changed(vec!["/p/out/lib/m.wat".into(), "/p/src/main.c".into()]);
        assert_eq!(status.trigger(&changed), "lib/m.wat, /p/src/main.c changed");
        status.cwd = PathBuf::from("/p");
        assert_eq!(status.trigger(&changed), "lib/m.wat, src/main.c changed");
    }
}
