//! The terminal live-wasm shares with the guest, under `--clear`: the screen
//! is cleared once a new run has something to show, not before, so the last
//! output stays in view while a save compiles (no blank screen, no flicker).
//! Whatever shows something first clears it: the guest's output or one of
//! our lines. It also holds the [`Progress`] line, which everything written
//! to the terminal erases first.
//!
//! And where the guest left the cursor: a guest whose last output ends
//! without a newline leaves a line open, and our next line (on stderr) starts
//! with one, rather than glued to its end (`Hello![live-wasm] #3 ...`). Its
//! stdout counts when it goes where our stderr goes (one terminal, as people
//! run it; `2>&1`).

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::plan::{EventsTarget, Plan};
use crate::progress::Progress;
use crate::transcript::Stream;

/// Clears the screen, the scrollback, and puts the cursor home.
const CLEAR: &str = "\x1b[2J\x1b[3J\x1b[H";

/// Whether and when the screen is to be cleared.
#[derive(Debug, Default)]
pub(crate) struct Screen {
    /// `--clear`, on a terminal.
    clears: bool,
    /// The next thing shown clears the screen first.
    pending: AtomicBool,
    /// Our stdout goes where our stderr goes.
    joined: bool,
    /// The guest's last output where our stderr goes did not end its line.
    open_line: AtomicBool,
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
            joined: stdout_joins_stderr(),
            open_line: AtomicBool::new(false),
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

    /// Notes what the guest just showed on its `stream` (past the filter):
    /// for the progress line, and whether it left a line open under our next
    /// line.
    pub(crate) fn guest_showed(&self, stream: Stream, shown: &[u8]) {
        if stream == Stream::Stdout && !self.joined {
            return;
        }
        self.progress.wrote(shown);
        if let Some(open) = leaves_line_open(shown) {
            self.open_line.store(open, Ordering::Release);
        }
    }

    /// What a line of ours on stderr starts with, written in the same write:
    /// a newline when the guest left its line open (only then: no blank line
    /// after output that ended its lines). The line is taken as closed.
    pub(crate) fn line_start(&self) -> &'static str {
        if self.open_line.swap(false, Ordering::AcqRel) {
            "\n"
        } else {
            ""
        }
    }

    /// Shows lines of ours on stderr: after the clear, if it is due, in place
    /// of the progress line, on a line of their own; in one write.
    pub(crate) fn show(&self, text: &str) {
        if self.clear_due() {
            self.progress.write(format!("{CLEAR}{text}").as_bytes());
        } else {
            let start = self.line_start();
            self.progress.write(format!("{start}{text}").as_bytes());
        }
    }

    /// Whether the screen is to be cleared now: then the guest's line is gone too.
    fn clear_due(&self) -> bool {
        let due = self.clears && self.pending.swap(false, Ordering::AcqRel);
        if due {
            self.open_line.store(false, Ordering::Release);
        }
        due
    }
}

/// Whether `shown` leaves the cursor in the middle of a line: its last
/// character, colours after it aside (`\n\x1b[0m` ends a line), is not a
/// newline. `None` when it shows nothing but colours.
fn leaves_line_open(shown: &[u8]) -> Option<bool> {
    let mut end = shown.len();
    loop {
        let last = *shown[..end].last()?;
        if last != b'm' {
            return Some(last != b'\n');
        }
        // `ESC [ digits ; : m`, an SGR sequence, shows nothing.
        let params = shown[..end - 1]
            .iter()
            .rev()
            .take_while(|byte| byte.is_ascii_digit() || matches!(byte, b';' | b':'))
            .count();
        let start = end - 1 - params;
        if start >= 2 && shown[start - 2..start] == *b"\x1b[" {
            end = start - 2;
        } else {
            return Some(true);
        }
    }
}

/// Whether our stdout goes where our stderr goes: the same terminal, pipe or
/// file (the same device and inode).
#[cfg(unix)]
fn stdout_joins_stderr() -> bool {
    use std::os::fd::{AsFd, BorrowedFd};
    use std::os::unix::fs::MetadataExt as _;
    let identity = |fd: BorrowedFd<'_>| {
        let metadata = std::fs::File::from(fd.try_clone_to_owned().ok()?)
            .metadata()
            .ok()?;
        Some((metadata.dev(), metadata.ino()))
    };
    let stdout = identity(std::io::stdout().as_fd());
    stdout.is_some() && stdout == identity(std::io::stderr().as_fd())
}

/// Whether our stdout goes where our stderr goes: taken to be so when both
/// are terminals.
#[cfg(not(unix))]
fn stdout_joins_stderr() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_open_unless_the_output_ended_it() {
        assert_eq!(leaves_line_open(b"Hello from live-wasm1!"), Some(true));
        assert_eq!(leaves_line_open(b"Hello\n"), Some(false));
        assert_eq!(leaves_line_open(b"Hello\r\n"), Some(false));
        assert_eq!(leaves_line_open(b"50%\r"), Some(true));
        assert_eq!(leaves_line_open(b"ok\n\x1b[0m"), Some(false));
        assert_eq!(leaves_line_open(b"\x1b[1;31mred\x1b[0m"), Some(true));
        assert_eq!(leaves_line_open(b"\n\x1b[38:5:1m\x1b[m"), Some(false));
        assert_eq!(leaves_line_open(b"\x1b[0m"), None);
        assert_eq!(leaves_line_open(b""), None);
        assert_eq!(leaves_line_open(b"m"), Some(true));
        assert_eq!(leaves_line_open(b"[0m"), Some(true));
    }

    #[test]
    fn our_line_starts_with_a_newline_only_after_an_open_one() {
        let screen = Screen {
            joined: false,
            ..Screen::default()
        };
        assert_eq!(screen.line_start(), "");
        screen.guest_showed(Stream::Stderr, b"partial");
        assert_eq!(screen.line_start(), "\n");
        assert_eq!(screen.line_start(), "");
        // Stdout elsewhere leaves our stderr alone.
        screen.guest_showed(Stream::Stdout, b"partial");
        assert_eq!(screen.line_start(), "");
        let joined = Screen {
            joined: true,
            ..Screen::default()
        };
        joined.guest_showed(Stream::Stdout, b"partial");
        joined.guest_showed(Stream::Stderr, b"\x1b[0m");
        assert_eq!(joined.line_start(), "\n");
        joined.guest_showed(Stream::Stderr, b"partial");
        joined.guest_showed(Stream::Stdout, b"whole\n");
        assert_eq!(joined.line_start(), "");
    }
}
