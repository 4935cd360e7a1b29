//! What can go wrong when one module uses another, said with who imported what.

use std::fmt;

use super::limits::{TooMuchInFlight, VALUES_WITHOUT_CAP, size};
use super::problem::{Problem, ProblemKind};
use crate::names::{self, BadName};

// The codes `live.use` returns (documented in `wit/README.md`).

/// The module is ready (it was, or is now, instantiated in this run).
pub(super) const OK: i32 = 0;
/// Neither `N.wat` nor `N.wasm` exists.
pub(super) const NOT_FOUND: i32 = -1;
/// The file is not a valid module, or its imports cannot be satisfied.
pub(super) const INVALID: i32 = -2;
/// Its start function (or `_initialize`) trapped.
pub(super) const TRAPPED: i32 = -3;
/// It needs, while being instantiated, a module that is waiting for it.
pub(super) const CYCLE: i32 = -4;
/// The name is refused, or (pointer, length) is not inside the caller's memory,
/// or it is not UTF-8.
pub(super) const BAD_NAME: i32 = -5;

/// The import that asked for a module: `test.wat imports testmod::function`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Site {
    /// The importing file, relative to the root, when known.
    pub file: Option<String>,
    /// `module::name` of the import, or `live.use("name")` for the explicit form.
    pub import: String,
}

impl Site {
    /// The explicit form, `live.use("name")`, the guest's name quoted short.
    pub(super) fn live_use(name: &str) -> Self {
        Self {
            file: None,
            import: format!("live.use({})", names::quoted(name)),
        }
    }

    /// The run's entry: nobody imported it, so messages name no site.
    pub(super) fn entry() -> Self {
        Self {
            file: None,
            import: String::new(),
        }
    }
}

/// `test.wat: testmod::function: ` (nothing for the entry), to start a message.
impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        if !self.import.is_empty() {
            write!(f, "{}: ", self.import)?;
        }
        Ok(())
    }
}

/// A failure to provide a module or one of its exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum UseError {
    /// The name is not a plain relative path inside the root.
    BadName {
        /// Who asked.
        site: Site,
        /// The name as written.
        name: String,
        /// Why it is refused.
        why: BadName,
    },
    /// Neither `N.wat` nor `N.wasm` exists.
    NotFound {
        /// Who asked.
        site: Site,
        /// The module name.
        name: String,
        /// The files looked for, relative to the root, and why each was passed
        /// over when it exists: `(no lib.wat or lib.wasm)`; with the root as
        /// the user names it when it is not the current folder: `in out/ (no
        /// lib.wat or lib.wasm there)`.
        looked: String,
        /// What to do instead of creating the file, when a file of that name
        /// sits elsewhere (`testmod.wat exists: start with --root . to use it`).
        hint: Option<String>,
    },
    /// The file exists but is not a module we can instantiate (syntax, validation,
    /// or link error).
    Invalid {
        /// Who asked.
        site: Site,
        /// The file, relative to the root.
        file: String,
        /// What is wrong with it.
        message: String,
        /// Line and column of a `.wat` error, when known.
        place: Option<(usize, usize)>,
        /// True when the module is well-formed but does not validate.
        validation: bool,
    },
    /// A module needs, while it is being instantiated, a module that needs it back.
    Cycle {
        /// Who asked last, closing the cycle.
        site: Site,
        /// The module names around the cycle, first and last the same.
        path: Vec<String>,
    },
    /// The module has no export of that name, or not of that kind.
    MissingExport {
        /// Who asked.
        site: Site,
        /// The providing file, relative to the root.
        file: String,
        /// The export asked for.
        export: String,
        /// What the importer expected (`(func (param i32))`, `memory`, ...).
        expected: String,
    },
    /// The export exists with another type than the import's.
    TypeMismatch {
        /// Who asked.
        site: Site,
        /// The providing file, relative to the root.
        file: String,
        /// The importer's signature.
        expected: String,
        /// The export's signature.
        found: String,
    },
    /// A host namespace (`wasi_snapshot_preview1`, `live`, ...) has no such item.
    UnknownHostImport {
        /// Who asked.
        site: Site,
    },
    /// A component import that nothing here can provide (HTTP, a resource
    /// crossing components, a plain function import).
    Unlinkable {
        /// Who asked.
        site: Site,
        /// Why, and what to do.
        why: String,
    },
    /// The values of a call across components would make those held on the
    /// host at once pass their bound (`--max-memory`, else 256 MiB).
    ValuesTooLarge {
        /// The call in progress that saw it (the entry's own call: no site).
        site: Site,
        /// The bound, what was held, by whom, and what was passed.
        refused: TooMuchInFlight,
    },
}

impl fmt::Display for UseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UseError::BadName { site, name, why } => {
                write!(
                    f,
                    "{site}module name {} is refused: {why}",
                    names::quoted(name)
                )
            }
            UseError::NotFound {
                site,
                name,
                looked,
                hint,
            } => {
                let hint = hint.as_deref().unwrap_or("create it and save");
                write!(f, "{site}module `{name}` not found {looked}; {hint}")
            }
            UseError::Invalid {
                site,
                file,
                message,
                ..
            } => write!(f, "{site}{file} is not a usable module: {message}"),
            UseError::Cycle { site, path } => write!(
                f,
                "{site}import cycle {}: each module needs the next one while it is \
                 being instantiated",
                path.join(" -> ")
            ),
            UseError::MissingExport {
                site,
                file,
                export,
                expected,
            } => write!(
                f,
                "{site}{file} has no export `{export}` (expected {expected})"
            ),
            UseError::TypeMismatch {
                site,
                file,
                expected,
                found,
            } => write!(
                f,
                "{site}type mismatch: the import expects {expected}, {file} exports {found}"
            ),
            UseError::UnknownHostImport { site } => {
                write!(f, "{site}the host does not provide this import")
            }
            UseError::Unlinkable { site, why } => write!(f, "{site}{why}"),
            UseError::ValuesTooLarge { site, refused } => {
                let caller = refused.chain.last().map_or("?", String::as_str);
                let along = match refused.chain.len() {
                    0 | 1 => ":".to_owned(),
                    _ => format!(
                        ", along {}: {} held, and",
                        refused.chain.join(" -> "),
                        size(refused.held)
                    ),
                };
                let passed = match refused.passed {
                    Some(bytes) => format!("passes {}", size(bytes)),
                    None => format!(
                        "passes (to a component or to the host) or returns more than the {} \
                         one call may copy now",
                        size(refused.left)
                    ),
                };
                write!(
                    f,
                    "{site}the values held on the host for calls across components would \
                     pass {}{along} {caller} {passed} (each value crossing components takes \
                     {} bytes on the host, a list<u8> as much per byte); pass less, or raise \
                     --max-memory (the bound is {} without it)",
                    size(refused.limit),
                    std::mem::size_of::<wasmtime::component::Val>(),
                    size(VALUES_WITHOUT_CAP),
                )
            }
        }
    }
}

impl std::error::Error for UseError {}

impl UseError {
    /// The negative code `live.use` returns for this failure (see `wit/live.wit`).
    pub(super) fn code(&self) -> i32 {
        match self {
            UseError::NotFound { .. } => NOT_FOUND,
            UseError::Invalid { .. }
            | UseError::MissingExport { .. }
            | UseError::TypeMismatch { .. }
            | UseError::UnknownHostImport { .. }
            | UseError::Unlinkable { .. }
            | UseError::ValuesTooLarge { .. } => INVALID,
            UseError::Cycle { .. } => CYCLE,
            UseError::BadName { .. } => BAD_NAME,
        }
    }
}

impl UseError {
    /// The failure as a [`Problem`]: its kind, the file at fault, and where.
    pub(super) fn problem(&self) -> Problem {
        let importer = |site: &Site| site.file.clone();
        let (kind, file, place) = match self {
            UseError::Invalid {
                file,
                place,
                validation,
                ..
            } => {
                let kind = match (place, validation) {
                    (Some(_), true) => ProblemKind::Validation,
                    (Some(_), false) => ProblemKind::Syntax,
                    (None, _) => ProblemKind::Invalid,
                };
                (kind, Some(file.clone()), *place)
            }
            UseError::NotFound { site, .. } => (ProblemKind::NotFound, importer(site), None),
            UseError::BadName { site, .. } => (ProblemKind::BadName, importer(site), None),
            UseError::Cycle { site, .. } => (ProblemKind::Cycle, importer(site), None),
            UseError::MissingExport { site, .. }
            | UseError::TypeMismatch { site, .. }
            | UseError::UnknownHostImport { site }
            | UseError::Unlinkable { site, .. } => (ProblemKind::Link, importer(site), None),
            UseError::ValuesTooLarge { site, .. } => (ProblemKind::Memory, importer(site), None),
        };
        Problem {
            file,
            place,
            ..Problem::new(kind, self.to_string())
        }
    }
}
