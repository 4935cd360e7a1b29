//! Something that went wrong, in the words both the status lines and the JSON
//! events use: a kind, where, and what.

/// Something that went wrong, said once: where, what, and the whole story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// What sort of thing went wrong.
    pub(crate) kind: ProblemKind,
    /// The file at fault, relative to the root, when known.
    pub(crate) file: Option<String>,
    /// 1-based line and column in that file, when known.
    pub(crate) place: Option<(usize, usize)>,
    /// What went wrong, in one line.
    pub(crate) message: String,
}

impl Problem {
    /// A problem with no place.
    pub(crate) fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Problem {
            kind,
            file: None,
            place: None,
            message: message.lines().next().unwrap_or_default().to_owned(),
        }
    }
}

/// The kinds of problem, one list for the events, the fuzz targets and the
/// README's events table: tools match on these words, so a kind is added,
/// never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
// The fuzzing harness re-exports it, to check the events against it.
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub enum ProblemKind {
    /// A `.wat` file that does not parse (with the place it stops at).
    Syntax,
    /// A `.wat` module that parses but does not validate.
    Validation,
    /// A module name that names no file, or a script (`--interpreter`) that
    /// is not there.
    NotFound,
    /// A name `live.use` could not read, or that no module may have.
    BadName,
    /// A file that is not a usable module, with no line to point at (a
    /// `.wasm` that does not validate, a component where a module was wanted).
    Invalid,
    /// An import that nothing provides, or not with its type.
    Link,
    /// A module that imports itself, through others or not.
    Cycle,
    /// The guest trapped.
    Trap,
    /// The run went over `--timeout`.
    Timeout,
    /// The run used all of `--fuel`.
    OutOfFuel,
    /// More memory than `--max-memory` allows (values passed between
    /// components included).
    Memory,
    /// Anything else that stopped a run from getting going.
    Error,
}

#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
impl ProblemKind {
    /// Every kind, in the order the README lists them.
    #[cfg(any(test, feature = "fuzzing"))]
    pub const ALL: [ProblemKind; 12] = [
        ProblemKind::Syntax,
        ProblemKind::Validation,
        ProblemKind::NotFound,
        ProblemKind::BadName,
        ProblemKind::Invalid,
        ProblemKind::Link,
        ProblemKind::Cycle,
        ProblemKind::Trap,
        ProblemKind::Timeout,
        ProblemKind::OutOfFuel,
        ProblemKind::Memory,
        ProblemKind::Error,
    ];

    /// The kind's word in the events (`"kind": "not-found"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Syntax => "syntax",
            ProblemKind::Validation => "validation",
            ProblemKind::NotFound => "not-found",
            ProblemKind::BadName => "bad-name",
            ProblemKind::Invalid => "invalid",
            ProblemKind::Link => "link",
            ProblemKind::Cycle => "cycle",
            ProblemKind::Trap => "trap",
            ProblemKind::Timeout => "timeout",
            ProblemKind::OutOfFuel => "out-of-fuel",
            ProblemKind::Memory => "memory",
            ProblemKind::Error => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_kind_in_order() {
        let readme = include_str!("../../README.md");
        let words: Vec<String> = ProblemKind::ALL
            .iter()
            .map(|kind| format!("`{}`", kind.as_str()))
            .collect();
        let list = format!("`kind` ({})", words.join(", "));
        assert!(
            readme.contains(&list),
            "the README's `error` event should say {list}"
        );
    }
}
