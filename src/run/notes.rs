//! What a run has to say while it runs, besides how it ended: sent to the
//! session, which says it through the status lines or the JSON events. A run
//! never writes to the terminal itself.

use crossbeam_channel::Sender;

use super::problem::Problem;

/// Something a run said on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// A `live.use` failed; the guest got `code` and goes on.
    UseFailed {
        /// The negative code the guest got.
        code: i32,
        /// What went wrong.
        problem: Problem,
        /// The whole message for people (a `.wat` error's source line included).
        detail: String,
    },
}

/// Where a run's notes go.
#[derive(Clone)]
pub(super) struct Notes(Sender<Note>);

impl Notes {
    /// Notes sent to `sender`.
    pub(super) fn new(sender: Sender<Note>) -> Self {
        Self(sender)
    }

    /// Says `note`; nobody listening (the session is over) is not an error.
    pub(super) fn say(&self, note: Note) {
        let _ = self.0.send(note);
    }
}
