//! The progress line: while something takes long (a `--build`, a compile),
//! one line on the terminal says what and for how long
//! (`[live-wasm] building (cargo) 12 s`), and `progress` events say it to
//! tools.
//!
//! Drawn on stderr only when it is a terminal (and not `TERM=dumb`), and
//! neither `--quiet` nor `--events json` on stderr asks for silence. Nothing
//! shows for a stage shorter than [`DELAY`], so a fast save looks as it always
//! did. The line is redrawn in place (`\r`, erase line) from a thread of its
//! own, so the session's loop and the runner go on as ever (a save during a
//! long compile is handled at once), and erased when its stage ends, and
//! before anything else reaches the terminal: our status lines, a guest's
//! output, a build's output that we pass on ([`Progress::write`]). After such
//! output it stays away until the terminal has been quiet for [`DELAY`], and
//! it is never drawn over a partial line (a prompt, a compiler's own progress
//! bar), whose text erasing our line would erase too.

use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anstyle::Style;
use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::plan::{EventsTarget, Plan};

/// How long a stage runs, or the terminal stays quiet, before the line shows:
/// long enough that a fast save shows nothing more, short enough that a
/// long wait is never silent.
pub(crate) const DELAY: Duration = Duration::from_millis(500);

/// How often the line is redrawn: its tenths of a second move.
const REDRAW: Duration = Duration::from_millis(200);

/// How often a `progress` event is given, from [`DELAY`] on.
const TELL_EVERY: Duration = Duration::from_secs(1);

/// Back to the start of the line, and erase it.
const ERASE: &[u8] = b"\r\x1b[2K";

/// What is taking long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum What {
    /// `--build`, named by its program.
    Build { program: String },
    /// A module, component or interpreter being compiled.
    Compile {
        /// Its file, relative to the root.
        file: String,
        /// The size of its wasm.
        bytes: usize,
        /// Set on the file's first compile in the session.
        first: Option<FirstCompile>,
    },
}

/// A file's first compile in the session: what the next session will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstCompile {
    /// Its code goes to the disk cache: the next session loads it.
    Cached,
    /// There is no disk cache (`--no-cache`, or a folder not trusted): every
    /// session compiles it.
    Uncached,
}

impl What {
    /// `--build COMMAND`, named by its program: the first one the shell runs
    /// that does the work (not `cd`, `echo` and the like, nor a variable
    /// assignment or `exec` before it), or the script it runs, by file name
    /// (one in the current folder as typed): `echo building; ./build` is
    /// `./build`, `cd app && cargo build` is `cargo`, `sh ci/make.sh` is
    /// `make.sh`.
    pub(crate) fn build(command: &str) -> What {
        const PREFIXES: &[&str] = &["exec", "env", "time", "nice", "command"];
        const ASIDES: &[&str] = &[
            "cd", "echo", "printf", "set", "export", "true", "test", "[", ":",
        ];
        const INTERPRETERS: &[&str] = &[
            "sh", "bash", "dash", "zsh", "python", "python3", "node", "ruby", "perl",
        ];
        // `>&2` is a redirection, not a command sent to the background.
        let command = command.replace(">&", "> ").replace("<&", "< ");
        let programs: Vec<&str> = command
            .split([';', '&', '|', '\n', '(', ')'])
            .filter_map(|part| {
                let mut words = part
                    .split_whitespace()
                    .skip_while(|word| is_assignment(word) || PREFIXES.contains(word));
                let program = words.next()?;
                match words.next() {
                    Some(script)
                        if INTERPRETERS.contains(&program)
                            && !script.starts_with(['-', '\'', '"']) =>
                    {
                        Some(script)
                    }
                    _ => Some(program),
                }
            })
            .collect();
        let program = (programs.iter())
            .find(|program| !ASIDES.contains(program))
            .or(programs.first())
            .map_or("sh", |program| match program.strip_prefix("./") {
                Some(here) if !here.contains('/') => program,
                _ => program.rsplit('/').next().unwrap_or(program),
            });
        What::Build {
            program: program.chars().filter(|c| !c.is_control()).collect(),
        }
    }

    /// What the line says before the time.
    fn words(&self) -> String {
        match self {
            What::Build { program } => format!("building ({program})"),
            What::Compile { file, bytes, first } => {
                let file: String = file.chars().filter(|c| !c.is_control()).collect();
                let note = match first {
                    Some(FirstCompile::Cached) => " (first time; cached after)",
                    Some(FirstCompile::Uncached) => " (no disk cache)",
                    None => "",
                };
                format!("compiling {file} {}{note}", size(*bytes))
            }
        }
    }
}

/// `NAME=value`, as the shell takes it before a command.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
    })
}

/// A stage as a `progress` event gives it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shown {
    /// `build` or `compile`.
    pub(crate) stage: &'static str,
    /// The build's program, or the file being compiled.
    pub(crate) what: String,
    /// The size of the wasm being compiled.
    pub(crate) bytes: Option<usize>,
    /// How long it has been going on.
    pub(crate) elapsed: Duration,
}

/// The progress line of a session, shared by the threads that start stages
/// (the session's for builds, the runner for compiles) and those that write
/// to the terminal.
#[derive(Debug)]
pub(crate) struct Progress {
    /// The line is drawn on stderr.
    draws: bool,
    /// `progress` events are wanted (`--events`).
    tells: bool,
    colour: bool,
    state: Mutex<State>,
    /// Wakes the ticker when a stage begins.
    wake: Condvar,
    told: Sender<Shown>,
    shown: Receiver<Shown>,
    /// Started with the first stage.
    ticker: OnceLock<()>,
}

#[derive(Debug, Default)]
struct State {
    stage: Option<Stage>,
    /// Stages begun so far: the last one's id.
    begun: u64,
    /// The text of our line, while it is on the terminal.
    drawn: Option<String>,
    /// What else was written last left the cursor after a partial line.
    mid_line: bool,
    /// When something else was last written, or about to be.
    wrote: Option<Instant>,
    /// The session is ending: the line is not drawn again.
    closed: bool,
}

#[derive(Debug)]
struct Stage {
    id: u64,
    what: What,
    started: Instant,
    /// When the next `progress` event is due.
    next_told: Instant,
}

impl Stage {
    fn shown(&self, now: Instant) -> Shown {
        let (stage, what, bytes) = match &self.what {
            What::Build { program } => ("build", program.clone(), None),
            What::Compile { file, bytes, .. } => ("compile", file.clone(), Some(*bytes)),
        };
        Shown {
            stage,
            what,
            bytes,
            elapsed: now.duration_since(self.started),
        }
    }
}

impl Default for Progress {
    /// Neither drawn nor told: stages cost nothing.
    fn default() -> Self {
        Self::with(false, false, false)
    }
}

impl Progress {
    /// The progress line of `plan`'s session.
    pub(crate) fn new(plan: &Plan) -> Self {
        let presentation = &plan.presentation;
        let terminal = std::io::stderr().is_terminal()
            && std::env::var_os("TERM").is_none_or(|term| term != "dumb");
        let colour =
            anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never;
        Self::with(
            terminal && !presentation.quiet && presentation.events != Some(EventsTarget::Stderr),
            presentation.events.is_some(),
            colour,
        )
    }

    fn with(draws: bool, tells: bool, colour: bool) -> Self {
        let (told, shown) = unbounded();
        Self {
            draws,
            tells,
            colour,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            told,
            shown,
            ticker: OnceLock::new(),
        }
    }

    /// Whether the line is drawn on the terminal.
    pub(crate) fn draws(&self) -> bool {
        self.draws
    }

    /// The stages as `progress` events give them, when `--events` wants
    /// them: after [`DELAY`], then every second. A stage's last is sent
    /// before it ends.
    pub(crate) fn shown(&self) -> &Receiver<Shown> {
        &self.shown
    }

    /// `what` begins, and goes on until the returned stage is dropped.
    pub(crate) fn begin(self: &Arc<Self>, what: What) -> Ongoing {
        if !self.draws && !self.tells {
            return Ongoing {
                progress: None,
                id: 0,
            };
        }
        self.ticker.get_or_init(|| {
            let progress = Arc::clone(self);
            // Without its thread the line is not shown: the session goes on.
            let _ = std::thread::Builder::new()
                .name("live-wasm-progress".to_owned())
                .spawn(move || progress.tick());
        });
        let mut state = self.lock();
        state.begun += 1;
        let id = state.begun;
        let now = Instant::now();
        state.stage = Some(Stage {
            id,
            what,
            started: now,
            next_told: now + DELAY,
        });
        self.wake.notify_all();
        Ongoing {
            progress: Some(Arc::clone(self)),
            id,
        }
    }

    /// Writes `bytes` (our lines, a build's output) to stderr, our line
    /// erased first, in one write.
    pub(crate) fn write(&self, bytes: &[u8]) {
        let mut state = self.lock();
        let mut out = Vec::with_capacity(ERASE.len() + bytes.len());
        if state.drawn.take().is_some() {
            out.extend_from_slice(ERASE);
        }
        out.extend_from_slice(bytes);
        let _ = std::io::stderr().lock().write_all(&out);
        state.wrote(bytes);
    }

    /// Something else is about to write to the terminal (a guest): our line
    /// goes, and stays away while it writes.
    pub(crate) fn erase(&self) {
        let mut state = self.lock();
        self.erase_line(&mut state);
        state.wrote = Some(Instant::now());
    }

    /// Something else wrote `bytes` to the terminal (a guest, through
    /// [`Self::erase`] first).
    pub(crate) fn wrote(&self, bytes: &[u8]) {
        self.lock().wrote(bytes);
    }

    /// The session ends: the line goes for good, so that nothing of it is
    /// left beside the shell's prompt.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        self.erase_line(&mut state);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn end(&self, id: u64) {
        let mut state = self.lock();
        if state.stage.as_ref().is_some_and(|stage| stage.id == id) {
            state.stage = None;
            self.erase_line(&mut state);
        }
    }

    fn erase_line(&self, state: &mut State) {
        if state.drawn.take().is_some() {
            let _ = std::io::stderr().lock().write_all(ERASE);
        }
    }

    /// The ticker thread: draws the line and gives the events while a stage
    /// goes on; sleeps while none does.
    fn tick(&self) {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let mut wait = None;
            let mut due = false;
            if let Some(stage) = &mut state.stage {
                let shows = stage.started + DELAY;
                if now < shows {
                    wait = Some(shows - now);
                } else {
                    due = true;
                    if self.tells && now >= stage.next_told {
                        let _ = self.told.send(stage.shown(now));
                        stage.next_told += TELL_EVERY;
                        if stage.next_told <= now {
                            stage.next_told = now + TELL_EVERY;
                        }
                    }
                    wait = Some(match self.draws {
                        true => REDRAW,
                        false => stage.next_told - now,
                    });
                }
            }
            if due && self.draws {
                self.draw(&mut state, now);
            }
            state = match wait {
                None => (self.wake.wait(state)).unwrap_or_else(PoisonError::into_inner),
                Some(wait) => match self.wake.wait_timeout(state, wait) {
                    Ok((state, _)) => state,
                    Err(poisoned) => poisoned.into_inner().0,
                },
            };
        }
    }

    /// Draws the line, unless something else wrote less than [`DELAY`] ago
    /// or left a partial line.
    fn draw(&self, state: &mut State, now: Instant) {
        let Some(stage) = &state.stage else { return };
        let waits = state.mid_line || state.wrote.is_some_and(|wrote| now < wrote + DELAY);
        if waits || state.closed {
            return;
        }
        let text = self.line(stage, now, terminal_width());
        if state.drawn.as_ref() == Some(&text) {
            return;
        }
        let mut out = ERASE.to_vec();
        out.extend_from_slice(text.as_bytes());
        let _ = std::io::stderr().lock().write_all(&out);
        state.drawn = Some(text);
    }

    /// The line for `stage` at `now`, on a terminal `width` columns wide (0:
    /// not known), which it must not fill: a line that wraps cannot be erased.
    fn line(&self, stage: &Stage, now: Instant, width: usize) -> String {
        let prefix = "[live-wasm] ";
        let time = format!(" {}", seconds(now.duration_since(stage.started)));
        let mut words = stage.what.words();
        let room = width.saturating_sub(1 + prefix.len() + time.len());
        if width > 0 && words.chars().count() > room {
            words = words.chars().take(room.saturating_sub(1)).collect();
            words.push('…');
        }
        let style = match self.colour {
            true => Style::new().dimmed(),
            false => Style::new(),
        };
        format!("{style}{prefix}{style:#}{words}{time}")
    }
}

impl State {
    /// Something else wrote `bytes`: where it left the cursor, and when.
    fn wrote(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // A line ended, or the screen cleared (`--clear`): the cursor is at
        // the start of an empty line.
        self.mid_line = !(bytes.ends_with(b"\n") || bytes.ends_with(b"\x1b[H"));
        self.wrote = Some(Instant::now());
    }
}

/// A stage going on: it ends, and its line goes, when this is dropped.
#[must_use = "the stage ends when this is dropped"]
pub(crate) struct Ongoing {
    progress: Option<Arc<Progress>>,
    id: u64,
}

impl Drop for Ongoing {
    fn drop(&mut self) {
        if let Some(progress) = self.progress.take() {
            progress.end(self.id);
        }
    }
}

/// The width of the terminal on stderr, in columns; 0 when not known.
fn terminal_width() -> usize {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: TIOCGWINSZ fills the winsize we own; on failure it is
        // left zeroed.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        let fd = std::io::stderr().as_raw_fd();
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0 {
            return usize::from(size.ws_col);
        }
    }
    0
}

/// A time for the line: `0.5 s`, `3.1 s`, then whole seconds, `12 s`.
fn seconds(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if seconds < 10.0 {
        // Down, not to the nearest: 9.96 s is not yet 10.
        format!("{:.1} s", (seconds * 10.0).floor() / 10.0)
    } else {
        format!("{} s", elapsed.as_secs())
    }
}

/// A size for people, in decimal units as file managers give them: `26 MB`,
/// `1.4 MB`, `310 kB`.
fn size(bytes: usize) -> String {
    let bytes = bytes as f64;
    if bytes >= 10e6 {
        format!("{:.0} MB", bytes / 1e6)
    } else if bytes >= 1e6 {
        format!("{:.1} MB", bytes / 1e6)
    } else if bytes >= 1e3 {
        format!("{:.0} kB", bytes / 1e3)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(command: &str) -> String {
        match What::build(command) {
            What::Build { program } => program,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_build_is_named_by_the_program_that_does_the_work() {
        assert_eq!(program("cargo build --target wasm32-wasip1"), "cargo");
        assert_eq!(program("./build"), "./build");
        assert_eq!(program("echo building >&2; ./build"), "./build");
        assert_eq!(program("tools/build --fast"), "build");
        assert_eq!(program("cd app && CC=clang make -j4"), "make");
        assert_eq!(program("GOOS=wasip1 exec go build -o main.wasm ."), "go");
        assert_eq!(program("sleep 2; cp a b"), "sleep");
        assert_eq!(program("sh ci/build.sh --release"), "build.sh");
        assert_eq!(program("/usr/bin/make"), "make");
        assert_eq!(program("sh -c 'make'"), "sh");
        assert_eq!(program("echo hi"), "echo");
        assert_eq!(program("  "), "sh");
    }

    #[test]
    fn the_line_says_what_how_big_and_how_long() {
        let compile = |first| What::Compile {
            file: "python.wasm".to_owned(),
            bytes: 26_267_204,
            first,
        };
        assert_eq!(
            compile(Some(FirstCompile::Cached)).words(),
            "compiling python.wasm 26 MB (first time; cached after)"
        );
        assert_eq!(
            compile(Some(FirstCompile::Uncached)).words(),
            "compiling python.wasm 26 MB (no disk cache)"
        );
        assert_eq!(compile(None).words(), "compiling python.wasm 26 MB");
        assert_eq!(size(1_427_671), "1.4 MB");
        assert_eq!(size(310_400), "310 kB");
        assert_eq!(size(12), "12 bytes");
        assert_eq!(seconds(Duration::from_millis(3_160)), "3.1 s");
        assert_eq!(seconds(Duration::from_millis(9_960)), "9.9 s");
        assert_eq!(seconds(Duration::from_millis(12_900)), "12 s");
    }

    #[test]
    fn the_line_fits_the_terminal() {
        let progress = Progress::with(true, false, false);
        let started = Instant::now();
        let stage = Stage {
            id: 1,
            what: What::Compile {
                file: "a/very/long/path/to/the/module.wasm".to_owned(),
                bytes: 3_100_000,
                first: None,
            },
            started,
            next_told: started,
        };
        let now = started + Duration::from_millis(1_234);
        assert_eq!(
            progress.line(&stage, now, 0),
            "[live-wasm] compiling a/very/long/path/to/the/module.wasm 3.1 MB 1.2 s"
        );
        let line = progress.line(&stage, now, 40);
        assert_eq!(line, "[live-wasm] compiling a/very/lon… 1.2 s");
        assert_eq!(line.chars().count(), 39);
    }

    #[test]
    fn a_partial_line_is_not_drawn_over() {
        let mut state = State::default();
        state.wrote(b"building [====>    ] 3/7\r");
        assert!(state.mid_line);
        state.wrote(b"");
        assert!(state.mid_line, "nothing written changes nothing");
        state.wrote(b"   Compiling hello v0.1.0\n");
        assert!(!state.mid_line);
        state.wrote(b"\x1b[2J\x1b[3J\x1b[H");
        assert!(!state.mid_line, "a cleared screen");
    }

    #[test]
    fn stages_cost_nothing_when_neither_drawn_nor_told() {
        let progress = Arc::new(Progress::default());
        let stage = progress.begin(What::build("cargo build"));
        assert!(stage.progress.is_none() && progress.ticker.get().is_none());
    }
}
