//! A Rust panic in its own words. On `wasm32-wasip1` and `-wasip2` a panic
//! aborts, and an abort is wasm's `unreachable`: all the engine sees is a
//! trap. What the panic said, std's hook wrote to stderr just before
//! (`thread 'main' panicked at src/main.rs:9:27:` and the message), so the end
//! of the guest's stderr is kept, a few KiB whatever it prints, and read back
//! when a run ends on `unreachable`.

/// How much of the end of the guest's stderr is kept: a panic's header and
/// the first line of its message, with room to spare.
const TAIL: usize = 8 * 1024;

/// The end of what the guest wrote to stderr.
#[derive(Debug, Default)]
pub(super) struct StderrTail {
    bytes: Vec<u8>,
}

impl StderrTail {
    /// Notes `bytes` written to stderr, keeping at most twice [`TAIL`].
    pub(super) fn write(&mut self, bytes: &[u8]) {
        self.bytes
            .extend_from_slice(&bytes[bytes.len().saturating_sub(TAIL)..]);
        if self.bytes.len() > 2 * TAIL {
            self.bytes.drain(..self.bytes.len() - TAIL);
        }
    }

    /// The last panic std's hook reported in what was kept, if any.
    pub(super) fn panic(&self) -> Option<Panic> {
        let text = String::from_utf8_lossy(&self.bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines.iter().enumerate().rev().find_map(|(at, line)| {
            let next = lines.get(at + 1).copied();
            Panic::from_lines(line, next)
        })
    }
}

/// A Rust panic, as its message gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Panic {
    /// Where it panicked, as the message names it: `src/main.rs`.
    pub(crate) file: String,
    /// 1-based line and column.
    pub(crate) line: usize,
    pub(crate) col: usize,
    /// The first line of what it said (empty for a bare `panic!()`).
    pub(crate) message: String,
}

impl Panic {
    /// The panic whose header is `line`, its message on `next`:
    /// `thread 'main' (1) panicked at src/main.rs:9:27:` then `<message>`
    /// (Rust 1.73 and later); or, before, all on one line:
    /// `thread 'main' panicked at '<message>', src/main.rs:9:27`.
    fn from_lines(line: &str, next: Option<&str>) -> Option<Panic> {
        let rest = line.strip_prefix("thread '")?;
        let (_, said) = rest.split_once(" panicked at ")?;
        let (place, message) = match said.strip_suffix(':') {
            Some(place) => {
                let message =
                    next.filter(|next| !next.starts_with("note: run with `RUST_BACKTRACE"));
                (place, message.unwrap_or_default())
            }
            None => {
                let (message, place) = said.strip_prefix('\'')?.rsplit_once("', ")?;
                (place, message)
            }
        };
        let mut parts = place.rsplitn(3, ':');
        let col = parts.next()?.parse().ok()?;
        let line = parts.next()?.parse().ok()?;
        let file = parts.next().filter(|file| !file.is_empty())?;
        Some(Panic {
            file: file.to_owned(),
            line,
            col,
            message: message.to_owned(),
        })
    }

    /// `src/main.rs:9:27`.
    pub(crate) fn place(&self) -> String {
        format!("{}:{}:{}", self.file, self.line, self.col)
    }
}

impl std::fmt::Display for Panic {
    /// `panicked at src/main.rs:9:27: <message>`: the status line's words.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "panicked at {}", self.place())?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(text: &str) -> StderrTail {
        let mut tail = StderrTail::default();
        tail.write(text.as_bytes());
        tail
    }

    #[test]
    fn a_panic_is_read_from_what_std_wrote() {
        let panic = tail(
            "warning: something\n\nthread 'main' (1) panicked at src/main.rs:9:27:\n\
             index out of bounds: the len is 3 but the index is 12\n\
             note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
        )
        .panic()
        .expect("a panic");
        assert_eq!(
            panic.to_string(),
            "panicked at src/main.rs:9:27: index out of bounds: the len is 3 but the index is 12"
        );
        assert_eq!(
            (panic.file.as_str(), panic.line, panic.col),
            ("src/main.rs", 9, 27)
        );

        let assert = tail(
            "thread 'main' panicked at src/lib.rs:2:5:\nassertion `left == right` failed\n  left: 1\n right: 2\n",
        );
        assert_eq!(
            assert.panic().expect("a panic").to_string(),
            "panicked at src/lib.rs:2:5: assertion `left == right` failed"
        );
        let bare = tail(
            "thread '<unnamed>' panicked at src/main.rs:1:13:\nnote: run with `RUST_BACKTRACE=1`",
        );
        assert_eq!(
            bare.panic().expect("a panic").to_string(),
            "panicked at src/main.rs:1:13"
        );
        let old = tail("thread 'main' panicked at 'it broke, badly', src/main.rs:4:5\n");
        assert_eq!(
            old.panic().expect("a panic").to_string(),
            "panicked at src/main.rs:4:5: it broke, badly"
        );
    }

    #[test]
    fn the_last_panic_counts_and_other_text_is_none() {
        let two = tail(
            "thread 'a' panicked at a.rs:1:1:\nfirst\nthread 'main' panicked at b.rs:2:2:\nsecond",
        );
        assert_eq!(two.panic().expect("a panic").message, "second");
        for text in [
            "",
            "Assertion failed: x (main.c: main: 4)\n",
            "thread 'main' panicked at nowhere:\nno place\n",
            "the thread 'main' panicked at src/main.rs:1:1:\n",
        ] {
            assert_eq!(tail(text).panic(), None, "{text:?}");
        }
    }

    #[test]
    fn the_tail_stays_bounded_and_keeps_the_end() {
        let mut tail = StderrTail::default();
        for _ in 0..1000 {
            tail.write(&[b'x'; 100]);
        }
        tail.write(b"\nthread 'main' panicked at src/main.rs:3:1:\nat last\n");
        assert!(tail.bytes.len() <= 2 * TAIL);
        assert_eq!(tail.panic().expect("a panic").message, "at last");
        for _ in 0..100 {
            tail.write(&[b'y'; 1000]);
        }
        assert!(tail.bytes.len() <= 2 * TAIL);
        assert_eq!(tail.panic(), None);
    }
}
