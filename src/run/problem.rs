//! Something that went wrong, in the words both the status lines and the JSON
//! events use: a kind, where, and what.

/// Something that went wrong, said once: where, what, and the whole story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `syntax`, `validation`, `not-found`, `bad-name`, `invalid`, `link`,
    /// `cycle`, `trap`, `timeout`, `out-of-fuel`, `memory`, `error`.
    pub kind: &'static str,
    /// The file at fault, relative to the root, when known.
    pub file: Option<String>,
    /// 1-based line and column in that file, when known.
    pub place: Option<(usize, usize)>,
    /// What went wrong, in one line.
    pub message: String,
}

impl Problem {
    /// A problem with no place.
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Problem {
            kind,
            file: None,
            place: None,
            message: message.lines().next().unwrap_or_default().to_owned(),
        }
    }
}
