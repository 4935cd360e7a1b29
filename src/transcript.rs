//! What a run printed, kept to compare it with the next run's (`--diff`) and
//! to show it again when the next save does not get as far as running
//! (`--clear`).
//!
//! Memory stays bounded whatever a guest prints: every line is kept as a hash
//! (8 bytes), its text only up to a budget per stream, and the output in the
//! order it came only as a tail, for the screen.

use std::collections::VecDeque;
use std::fmt::Write as _;

use xxhash_rust::xxh3::Xxh3Default;

/// The text kept per stream; past it, lines are kept as hashes only.
pub(crate) const TEXT_BUDGET: usize = 4 << 20;

/// The longest text kept of one line (more than a screen's width; a line is
/// shown cut past this anyway).
const LINE_TEXT: usize = 4096;

/// The tail of the output kept to show again.
const REPLAY_BUDGET: usize = 1 << 20;

/// One of a guest's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Its stdout.
    Stdout,
    /// Its stderr.
    Stderr,
}

/// What one run printed.
#[derive(Default)]
pub(crate) struct Transcript {
    /// Its stdout, by line.
    pub(crate) stdout: Lines,
    /// Its stderr, by line.
    pub(crate) stderr: Lines,
    /// The tail of both, in order, when asked for.
    replay: Option<Replay>,
}

impl Transcript {
    /// An empty transcript; `replay` keeps the tail of the output in order too.
    pub(crate) fn new(replay: bool) -> Self {
        Self {
            replay: replay.then(Replay::default),
            ..Self::default()
        }
    }

    /// Notes `bytes` written to `stream`.
    pub(crate) fn write(&mut self, stream: Stream, bytes: &[u8]) {
        match stream {
            Stream::Stdout => self.stdout.write(bytes),
            Stream::Stderr => self.stderr.write(bytes),
        }
        if let Some(replay) = &mut self.replay {
            replay.write(stream, bytes);
        }
    }

    /// Ends the last lines, which may lack their newline (a last line is
    /// the same with or without one).
    pub(crate) fn finish(&mut self) {
        self.stdout.finish();
        self.stderr.finish();
    }

    /// Whether the run printed anything at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty()
    }

    /// The output's tail, in the order it came, and how many bytes before it
    /// were not kept; `None` when the tail was not asked for.
    pub(crate) fn replay(&self) -> Option<(impl Iterator<Item = (Stream, &[u8])>, u64)> {
        let replay = self.replay.as_ref()?;
        let chunks = (replay.chunks.iter()).map(|(stream, bytes)| (*stream, bytes.as_slice()));
        Some((chunks, replay.dropped))
    }
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcript")
            .field("stdout_lines", &self.stdout.len())
            .field("stderr_lines", &self.stderr.len())
            .finish_non_exhaustive()
    }
}

/// One stream's lines: a hash of every line, and the text of the first ones.
#[derive(Default)]
pub(crate) struct Lines {
    hashes: Vec<u64>,
    /// The text of the first lines, one after the other.
    text: String,
    /// Where each of those lines ends in `text` (a few bytes past
    /// [`TEXT_BUDGET`] at most: well within a `u32`).
    ends: Vec<u32>,
    /// The line being written: its hash so far, its first bytes, its length.
    line: Xxh3Default,
    line_start: Vec<u8>,
    line_len: usize,
    /// Some line's text was not kept: the budget ran out.
    over_budget: bool,
}

impl Lines {
    fn write(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (piece, rest, ends) = match memchr::memchr(b'\n', bytes) {
                Some(at) => (&bytes[..at], &bytes[at + 1..], true),
                None => (bytes, &[][..], false),
            };
            self.line.update(piece);
            let room = LINE_TEXT.saturating_sub(self.line_start.len());
            self.line_start
                .extend_from_slice(&piece[..piece.len().min(room)]);
            self.line_len += piece.len();
            if ends {
                self.end_line();
            }
            bytes = rest;
        }
    }

    /// Ends the last line, and gives back what the vectors hold beyond their
    /// length (they are kept until the next run has been compared).
    fn finish(&mut self) {
        if self.line_len > 0 {
            self.end_line();
        }
        self.hashes.shrink_to_fit();
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.line_start = Vec::new();
    }

    fn end_line(&mut self) {
        self.hashes.push(self.line.digest());
        self.line.reset();
        let len = std::mem::take(&mut self.line_len);
        let start = &self.line_start;
        if self.over_budget || self.text.len() + start.len() > TEXT_BUDGET {
            self.over_budget = true;
        } else {
            self.text.push_str(&String::from_utf8_lossy(start));
            if len > start.len() {
                let _ = write!(self.text, "… ({} bytes more)", len - start.len());
            }
            self.ends.push(self.text.len() as u32);
        }
        self.line_start.clear();
    }

    /// How many lines there are.
    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// A hash of each line, in order.
    pub(crate) fn hashes(&self) -> &[u64] {
        &self.hashes
    }

    /// Line `index`'s text (lossily UTF-8, cut past a few KiB), if it was kept.
    pub(crate) fn text(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)? as usize;
        let start = index
            .checked_sub(1)
            .map_or(0, |before| self.ends[before] as usize);
        Some(&self.text[start..end])
    }
}

/// The tail of the output, as it came.
#[derive(Default)]
struct Replay {
    chunks: VecDeque<(Stream, Vec<u8>)>,
    bytes: usize,
    /// Bytes let go from the front.
    dropped: u64,
}

impl Replay {
    fn write(&mut self, stream: Stream, bytes: &[u8]) {
        // A write bigger than the whole budget keeps its own tail.
        let bytes = &bytes[bytes.len().saturating_sub(REPLAY_BUDGET)..];
        match self.chunks.back_mut() {
            Some((last, chunk)) if *last == stream => chunk.extend_from_slice(bytes),
            _ => self.chunks.push_back((stream, bytes.to_vec())),
        }
        self.bytes += bytes.len();
        while self.bytes > REPLAY_BUDGET {
            let Some((_, front)) = self.chunks.front_mut() else {
                break;
            };
            let over = self.bytes - REPLAY_BUDGET;
            let cut = over.min(front.len());
            front.drain(..cut);
            self.bytes -= cut;
            self.dropped += cut as u64;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &Lines) -> Vec<Option<&str>> {
        (0..lines.len()).map(|index| lines.text(index)).collect()
    }

    #[test]
    fn lines_split_across_writes_are_one_line() {
        let mut transcript = Transcript::new(false);
        transcript.write(Stream::Stdout, b"hel");
        transcript.write(Stream::Stdout, b"lo\nwor");
        transcript.write(Stream::Stderr, b"oops\n");
        transcript.write(Stream::Stdout, b"ld\n\nlast");
        transcript.finish();
        let out = &transcript.stdout;
        assert_eq!(
            texts(out),
            [Some("hello"), Some("world"), Some(""), Some("last")]
        );
        assert_eq!(texts(&transcript.stderr), [Some("oops")]);

        let mut whole = Transcript::new(false);
        whole.write(Stream::Stdout, b"hello\nworld\n\nlast");
        whole.finish();
        assert_eq!(whole.stdout.hashes(), out.hashes());
        assert_ne!(out.hashes()[0], out.hashes()[1]);
    }

    #[test]
    fn long_lines_and_big_outputs_keep_hashes_not_text() {
        let mut transcript = Transcript::new(false);
        let long = "x".repeat(LINE_TEXT + 10);
        transcript.write(Stream::Stdout, long.as_bytes());
        transcript.write(Stream::Stdout, b"\n");
        let text = transcript.stdout.text(0).expect("kept");
        assert!(text.ends_with("… (10 bytes more)"), "{text}");

        let line = "y".repeat(1000) + "\n";
        let lines = TEXT_BUDGET / 1000 + 10;
        for _ in 0..lines {
            transcript.write(Stream::Stdout, line.as_bytes());
        }
        transcript.finish();
        let out = &transcript.stdout;
        assert_eq!(out.len(), lines + 1);
        assert!(out.over_budget);
        assert!(out.text(1).is_some());
        assert_eq!(out.text(lines), None);
        assert_eq!(out.hashes()[1], out.hashes()[lines]);
    }

    #[test]
    fn the_replay_keeps_the_tail_in_order() {
        let mut transcript = Transcript::new(true);
        transcript.write(Stream::Stdout, b"a\n");
        transcript.write(Stream::Stderr, b"b\n");
        transcript.write(Stream::Stdout, b"c");
        transcript.write(Stream::Stdout, b"d\n");
        let (chunks, dropped) = transcript.replay().expect("asked for");
        let chunks: Vec<_> = chunks.collect();
        assert_eq!(
            chunks,
            [
                (Stream::Stdout, &b"a\n"[..]),
                (Stream::Stderr, &b"b\n"[..]),
                (Stream::Stdout, &b"cd\n"[..])
            ]
        );
        assert_eq!(dropped, 0);

        let big = vec![b'z'; REPLAY_BUDGET];
        transcript.write(Stream::Stderr, &big);
        let (chunks, dropped) = transcript.replay().expect("asked for");
        let chunks: Vec<_> = chunks.collect();
        assert_eq!(dropped, 7);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].1.len(), REPLAY_BUDGET);
        assert!(Transcript::new(false).replay().is_none());
    }
}
