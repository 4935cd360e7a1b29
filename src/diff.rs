//! How a run differs from the one before it (`--diff`): its stdout and stderr
//! line by line, changed stretches with a little context and the unchanged
//! ones folded; its end and its fuel.
//!
//! Lines are compared by hash ([`Transcript`] keeps a hash of every line), so
//! an output of any size is compared in bounded memory; what is shown of it is
//! bounded too.

use std::time::{Duration, Instant};

use similar::{Algorithm, DiffOp, DiffTag};

use crate::transcript::{Lines, Transcript};

/// Unchanged lines shown around a change.
const CONTEXT: usize = 2;

/// The most changed lines shown in all: past them, changes are counted only.
const SHOWN: usize = 200;

/// How long a comparison may take before it settles for a coarser answer
/// (two very different outputs of a million lines).
const PATIENCE: Duration = Duration::from_millis(200);

/// A run as it is compared: what it printed, how it ended, the fuel it used.
#[derive(Debug)]
pub(crate) struct Compared<'a> {
    /// The run's number.
    pub(crate) run: u64,
    /// What it printed.
    pub(crate) output: &'a Transcript,
    /// How it ended, in the status line's words (`ok`, `exit 1`, `trap: ...`).
    pub(crate) ended: &'a str,
    /// The fuel it used, under `--fuel`.
    pub(crate) fuel: Option<u64>,
}

/// How a run differs from the one before it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Diff {
    /// The number of the run compared against.
    pub(crate) against: u64,
    /// Its stdout's difference.
    pub(crate) stdout: StreamDiff,
    /// Its stderr's difference.
    pub(crate) stderr: StreamDiff,
    /// How the previous run ended, when this one ended otherwise.
    pub(crate) ended_before: Option<String>,
    /// The fuel before and now, when it changed.
    pub(crate) fuel: Option<(u64, u64)>,
}

impl Diff {
    /// Whether both streams printed the same lines as before.
    pub(crate) fn output_unchanged(&self) -> bool {
        self.stdout.unchanged() && self.stderr.unchanged()
    }
}

/// How one stream's lines differ.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamDiff {
    /// Lines only in the new output.
    pub(crate) added: usize,
    /// Lines only in the old output.
    pub(crate) removed: usize,
    /// The changed stretches, with their context, in order (the first ones,
    /// up to a bound).
    pub(crate) hunks: Vec<Hunk>,
    /// Changed lines not in `hunks`: past the bound of what is shown.
    pub(crate) not_shown: usize,
    /// Lines in both outputs after the last hunk (when all changes are shown).
    pub(crate) unchanged_after: usize,
    /// The comparison ran out of time: changes may be reported coarser
    /// (more lines) than they are.
    pub(crate) coarse: bool,
}

impl StreamDiff {
    /// Whether no line changed.
    pub(crate) fn unchanged(&self) -> bool {
        self.added == 0 && self.removed == 0
    }
}

/// A changed stretch and its context.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Hunk {
    /// Unchanged lines between the previous hunk (or the start) and this one.
    pub(crate) unchanged_before: usize,
    /// Its lines, in order.
    pub(crate) lines: Vec<DiffLine>,
}

/// One line of a hunk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DiffLine {
    /// Whether it was removed, added, or is context.
    pub(crate) change: Change,
    /// Its number (from 1) in the output it is from: the old for a removed
    /// line, the new otherwise.
    pub(crate) number: usize,
    /// Its text, unless it lay past what was kept of the output.
    pub(crate) text: Option<String>,
}

/// What happened to a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// In both, around a change.
    Same,
    /// Only in the old output.
    Removed,
    /// Only in the new output.
    Added,
}

impl Change {
    /// Its mark at the start of a shown line.
    pub(crate) fn mark(self) -> char {
        match self {
            Change::Same => ' ',
            Change::Removed => '-',
            Change::Added => '+',
        }
    }

    /// Its name in the events.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Change::Same => "same",
            Change::Removed => "removed",
            Change::Added => "added",
        }
    }
}

/// How `now` differs from `before`.
pub(crate) fn compare(before: &Compared<'_>, now: &Compared<'_>) -> Diff {
    let mut shown = SHOWN;
    let stdout = compare_lines(&before.output.stdout, &now.output.stdout, &mut shown);
    let stderr = compare_lines(&before.output.stderr, &now.output.stderr, &mut shown);
    Diff {
        against: before.run,
        stdout,
        stderr,
        ended_before: (before.ended != now.ended).then(|| before.ended.to_owned()),
        fuel: match (before.fuel, now.fuel) {
            (Some(old), Some(new)) if old != new => Some((old, new)),
            _ => None,
        },
    }
}

/// How `new`'s lines differ from `old`'s; at most `shown` changed lines are
/// put in hunks (what is left of it is left in `shown`).
fn compare_lines(old: &Lines, new: &Lines, shown: &mut usize) -> StreamDiff {
    let deadline = Instant::now() + PATIENCE;
    let ops = similar::capture_diff_slices_deadline(
        Algorithm::Myers,
        old.hashes(),
        new.hashes(),
        Some(deadline),
    );
    let coarse = Instant::now() >= deadline;
    let mut diff = StreamDiff {
        coarse,
        ..StreamDiff::default()
    };
    for op in &ops {
        let (tag, old_range, new_range) = op.as_tag_tuple();
        if tag != DiffTag::Equal {
            diff.removed += old_range.len();
            diff.added += new_range.len();
        }
    }
    let mut shown_up_to = 0;
    for group in similar::group_diff_ops(ops, CONTEXT) {
        let Some(first) = group.first() else { continue };
        let starts_at = first.new_range().start;
        let mut hunk = Hunk {
            unchanged_before: starts_at - shown_up_to,
            lines: Vec::new(),
        };
        for op in &group {
            push_lines(&mut hunk.lines, op, old, new, shown, &mut diff.not_shown);
        }
        if let Some(last) = group.last() {
            shown_up_to = last.new_range().end;
        }
        if !hunk.lines.iter().any(|line| line.change != Change::Same) {
            // All its changes are past the bound: counted, not shown.
            continue;
        }
        diff.hunks.push(hunk);
    }
    if diff.not_shown == 0 {
        diff.unchanged_after = new.len() - shown_up_to;
    }
    diff
}

/// Puts `op`'s lines in `lines`: context as it is, changes while `shown`
/// lasts, counted in `not_shown` after.
fn push_lines(
    lines: &mut Vec<DiffLine>,
    op: &DiffOp,
    old: &Lines,
    new: &Lines,
    shown: &mut usize,
    not_shown: &mut usize,
) {
    let (tag, old_range, new_range) = op.as_tag_tuple();
    let line = |change, index, from: &Lines| DiffLine {
        change,
        number: index + 1,
        text: from.text(index).map(str::to_owned),
    };
    if tag == DiffTag::Equal {
        if *shown > 0 {
            lines.extend(new_range.map(|index| line(Change::Same, index, new)));
        }
        return;
    }
    for (change, range, from) in [
        (Change::Removed, old_range, old),
        (Change::Added, new_range, new),
    ] {
        for index in range {
            if *shown == 0 {
                *not_shown += 1;
            } else {
                *shown -= 1;
                lines.push(line(change, index, from));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::Stream;

    fn printed(stdout: &str, stderr: &str) -> Transcript {
        let mut transcript = Transcript::new(false);
        transcript.write(Stream::Stdout, stdout.as_bytes());
        transcript.write(Stream::Stderr, stderr.as_bytes());
        transcript.finish();
        transcript
    }

    fn run<'a>(run: u64, output: &'a Transcript, ended: &'a str) -> Compared<'a> {
        Compared {
            run,
            output,
            ended,
            fuel: None,
        }
    }

    /// A hunk as `" 1 a", "-2 b", "+2 c"`.
    fn shown(hunk: &Hunk) -> Vec<String> {
        (hunk.lines.iter())
            .map(|line| {
                let text = line.text.as_deref().unwrap_or("?");
                format!("{}{} {text}", line.change.mark(), line.number)
            })
            .collect()
    }

    fn numbered(lines: usize, changed: Option<usize>) -> String {
        (1..=lines)
            .map(|n| match changed {
                Some(c) if c == n => format!("line {n} changed\n"),
                _ => format!("line {n}\n"),
            })
            .collect()
    }

    #[test]
    fn the_same_output_is_unchanged() {
        let a = printed("one\ntwo\n", "warn\n");
        let b = printed("one\ntwo\n", "warn\n");
        let diff = compare(&run(1, &a, "ok"), &run(2, &b, "ok"));
        assert!(diff.output_unchanged());
        assert_eq!(diff.against, 1);
        assert_eq!(diff.ended_before, None);
        assert!(diff.stdout.hunks.is_empty());
    }

    #[test]
    fn one_changed_line_of_a_thousand_is_one_hunk_with_its_context() {
        let a = printed(&numbered(1000, None), "");
        let b = printed(&numbered(1000, Some(500)), "");
        let diff = compare(&run(1, &a, "ok"), &run(2, &b, "ok"));
        let stdout = &diff.stdout;
        assert_eq!((stdout.added, stdout.removed), (1, 1));
        assert_eq!(stdout.hunks.len(), 1);
        let hunk = &stdout.hunks[0];
        assert_eq!(hunk.unchanged_before, 497);
        assert_eq!(
            shown(hunk),
            [
                " 498 line 498",
                " 499 line 499",
                "-500 line 500",
                "+500 line 500 changed",
                " 501 line 501",
                " 502 line 502"
            ]
        );
        assert_eq!(stdout.unchanged_after, 498);
        assert!(diff.stderr.unchanged());
        assert!(!diff.output_unchanged());
    }

    #[test]
    fn ends_and_fuel_are_compared() {
        let a = printed("x\n", "");
        let b = printed("x\ny\n", "");
        let before = Compared {
            fuel: Some(100),
            ..run(4, &a, "ok")
        };
        let now = Compared {
            fuel: Some(120),
            ..run(5, &b, "exit 1")
        };
        let diff = compare(&before, &now);
        assert_eq!(diff.ended_before.as_deref(), Some("ok"));
        assert_eq!(diff.fuel, Some((100, 120)));
        assert_eq!((diff.stdout.added, diff.stdout.removed), (1, 0));
        assert_eq!(shown(&diff.stdout.hunks[0]), [" 1 x", "+2 y"]);
        assert_eq!(diff.stdout.unchanged_after, 0);
    }

    #[test]
    fn what_is_shown_is_bounded() {
        let a = printed(&numbered(5000, None), "");
        let b = printed(&"other\n".repeat(5000), "");
        let diff = compare(&run(1, &a, "ok"), &run(2, &b, "ok"));
        let stdout = &diff.stdout;
        assert_eq!((stdout.added, stdout.removed), (5000, 5000));
        let changed: usize = (stdout.hunks.iter())
            .map(|hunk| {
                let lines = hunk.lines.iter();
                lines.filter(|line| line.change != Change::Same).count()
            })
            .sum();
        assert_eq!(changed, SHOWN);
        assert_eq!(stdout.not_shown, 10_000 - SHOWN);
    }
}
