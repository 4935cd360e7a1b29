//! Module names to files, confined to the root: `N` -> `N.wat`, else `N.wasm`;
//! `lib/math` -> `lib/math.wat`. Nothing outside the root is ever read, and only
//! regular files are.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::source;

/// Import module names served by the host, never by a file.
pub(crate) const HOST_MODULES: &[&str] = &["wasi_snapshot_preview1", "wasi_unstable", "live"];

/// True when `module` names one of the host's modules rather than a module file.
pub(crate) fn is_host_module(module: &str) -> bool {
    HOST_MODULES.contains(&module)
}

/// How messages name a file: relative to the root when it is inside it.
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The longest module name taken, in bytes: a path inside a project, not data.
/// A guest's 200 MB name is refused before it is copied or quoted.
pub(crate) const MAX_NAME_LEN: usize = 4096;

/// A name a guest chose, quoted for a message: escaped, and cut after 256 bytes.
pub(crate) fn quoted(name: &str) -> String {
    const SHOWN: usize = 256;
    let cut = (0..=SHOWN.min(name.len()))
        .rev()
        .find(|at| name.is_char_boundary(*at))
        .unwrap_or(0);
    match &name[..cut] {
        whole if cut == name.len() => format!("{whole:?}"),
        start => format!("{start:?}… ({} bytes)", name.len()),
    }
}

/// Why a module name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadName {
    /// The empty string.
    Empty,
    /// Longer than [`MAX_NAME_LEN`] bytes.
    TooLong(usize),
    /// Contains a NUL byte.
    Nul,
    /// Starts at the file-system root.
    Absolute,
    /// Has a `..`, `.` or empty path component.
    NotPlain,
}

impl std::fmt::Display for BadName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadName::Empty => write!(f, "the name is empty"),
            BadName::TooLong(len) => {
                write!(f, "the name is {len} bytes long (at most {MAX_NAME_LEN})")
            }
            BadName::Nul => write!(f, "the name contains a NUL byte"),
            BadName::Absolute => write!(f, "absolute paths are not allowed"),
            BadName::NotPlain => write!(
                f,
                "names are relative paths made of plain components (no `..`, `.` or `//`)"
            ),
        }
    }
}

/// Checks the shape of a module name: a plain relative path, short enough.
pub(crate) fn check(name: &str) -> Result<(), BadName> {
    if name.is_empty() {
        return Err(BadName::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(BadName::TooLong(name.len()));
    }
    if name.contains('\0') {
        return Err(BadName::Nul);
    }
    if name.starts_with('/') || name.starts_with('\\') || Path::new(name).is_absolute() {
        return Err(BadName::Absolute);
    }
    let plain =
        |part: &str| !part.is_empty() && part != "." && part != ".." && !part.contains('\\');
    if !name.split('/').all(plain) {
        return Err(BadName::NotPlain);
    }
    Ok(())
}

/// Where module `name` may live, relative to the root: `[N.wat, N.wasm]`.
fn candidates(name: &str) -> [PathBuf; 2] {
    [format!("{name}.wat").into(), format!("{name}.wasm").into()]
}

/// The root folder, open. Module files are opened beneath this handle
/// (`openat2` with `RESOLVE_BENEATH` where the kernel has it): no symlink, `..`,
/// over-long path or rename race can lead a name outside the root, and a file
/// is read from the very handle that was checked.
pub(crate) struct Root {
    path: PathBuf,
    dir: cap_std::fs::Dir,
}

/// A module file found beneath the root, open for reading.
#[derive(Debug)]
pub(crate) struct Found {
    /// The file (absolute, under the root's path), for messages and the watcher.
    pub path: PathBuf,
    /// The file itself: a regular file.
    pub file: File,
}

/// Why a candidate file of a name was passed over.
#[derive(Debug)]
pub(crate) enum Passed {
    /// It does not exist.
    Missing,
    /// It leads outside the root (a symlink). Said to the user only: for the
    /// guest it is as missing.
    Outside,
    /// It is not a regular file (a folder, a FIFO): [`source::regular`] says which.
    NotAFile(io::Error),
}

/// Why a name has no module file.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The name's shape is refused.
    Bad(BadName),
    /// Neither candidate is a regular file beneath the root: each with why.
    NotFound([(PathBuf, Passed); 2]),
    /// A candidate exists but cannot be opened (permissions, a symlink loop).
    Unreadable(PathBuf, io::Error),
}

impl Root {
    /// Opens the root folder at `path` (absolute).
    pub(crate) fn open(path: &Path) -> io::Result<Root> {
        let dir = cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(Root {
            path: path.to_path_buf(),
            dir,
        })
    }

    /// The file of module `name`: the first of `N.wat`, `N.wasm` that is a
    /// regular file beneath the root, opened.
    pub(crate) fn find(&self, name: &str) -> Result<Found, Lookup> {
        check(name).map_err(Lookup::Bad)?;
        let [wat, wasm] = candidates(name);
        let wat_passed = match self.open_beneath(&wat)? {
            Ok(found) => return Ok(found),
            Err(passed) => passed,
        };
        match self.open_beneath(&wasm)? {
            Ok(found) => Ok(found),
            Err(passed) => Err(Lookup::NotFound([
                (self.path.join(wat), wat_passed),
                (self.path.join(wasm), passed),
            ])),
        }
    }

    /// Opens `relative` beneath the root: the file, or why it was passed over.
    fn open_beneath(&self, relative: &Path) -> Result<Result<Found, Passed>, Lookup> {
        let options = source::reading_beneath();
        let path = self.path.join(relative);
        let file = match self.dir.open_with(relative, &options) {
            Ok(file) => file.into_std(),
            Err(err) => {
                return match err.raw_os_error() {
                    // A name too long for the file system (a component over
                    // NAME_MAX, a path over PATH_MAX) names no file: missing,
                    // as documented, not a file that cannot be read. (By kind,
                    // not number: ENOENT, ENOTDIR and ENAMETOOLONG on Unix,
                    // their own codes on Windows.)
                    Some(_) if is_no_such_name(err.kind()) => Ok(Err(Passed::Missing)),
                    // cap-std's "a path led outside of the filesystem" (the
                    // kernel's EXDEV, or its own check) carries no OS code.
                    None if err.kind() == io::ErrorKind::PermissionDenied => {
                        Ok(Err(Passed::Outside))
                    }
                    _ => Err(Lookup::Unreadable(path, err)),
                };
            }
        };
        Ok(match source::regular(file) {
            Ok(file) => Ok(Found { path, file }),
            Err(err) => Err(Passed::NotAFile(err)),
        })
    }
}

/// True for the error of a name that leads to no file: missing, a file where
/// a folder was named, or too long to be a name.
fn is_no_such_name(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::{InvalidFilename, NotADirectory, NotFound};
    matches!(kind, NotFound | NotADirectory | InvalidFilename)
}

/// What was looked for, relative to `root`: `no a.wat or a.wasm`, or why
/// each was passed over (`a.wat leads outside the root (a symlink?); no a.wasm`).
pub(crate) fn looked_for(root: &Path, passed: &[(PathBuf, Passed); 2]) -> String {
    let say = |(path, why): &(PathBuf, Passed)| match why {
        Passed::Missing => format!("no {}", relative(root, path)),
        why => format!("{} {why}", relative(root, path)),
    };
    match passed {
        [(wat, Passed::Missing), (wasm, Passed::Missing)] => {
            format!("no {} or {}", relative(root, wat), relative(root, wasm))
        }
        [first, second] => format!("{}; {}", say(first), say(second)),
    }
}

impl std::fmt::Display for Passed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Passed::Missing => write!(f, "does not exist"),
            Passed::Outside => write!(f, "leads outside the root (a symlink?)"),
            Passed::NotAFile(why) => write!(f, "is passed over: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(root: &Root, name: &str) -> Result<PathBuf, Lookup> {
        root.find(name).map(|found| found.path)
    }

    #[test]
    fn names_that_leave_the_root_are_refused() {
        assert_eq!(check("lib/math"), Ok(()));
        assert_eq!(check(""), Err(BadName::Empty));
        assert_eq!(check("a\0b"), Err(BadName::Nul));
        assert_eq!(check("/etc/passwd"), Err(BadName::Absolute));
        for name in ["..", "../x", "lib/../../x", "./x", "a//b", "a/", "a\\..\\b"] {
            assert_eq!(check(name), Err(BadName::NotPlain), "{name}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert_eq!(check(&long), Err(BadName::TooLong(MAX_NAME_LEN + 1)));
        assert_eq!(quoted("a\u{1b}b"), "\"a\\u{1b}b\"");
        let shown = format!("\"{}\"… (4097 bytes)", "a".repeat(256));
        assert_eq!(quoted(&long), shown);
    }

    #[test]
    fn plain_names_map_to_wat_then_wasm_and_only_regular_files_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir(path.join("lib")).expect("mkdir");
        std::fs::write(path.join("lib/math.wat"), "(module)").expect("write");
        std::fs::write(path.join("lib/math.wasm"), "").expect("write");
        std::fs::write(path.join("only.wasm"), "").expect("write");
        // A folder named `dep.wat` does not hide `dep.wasm`.
        std::fs::create_dir(path.join("dep.wat")).expect("mkdir");
        std::fs::write(path.join("dep.wasm"), "").expect("write");
        let root = Root::open(&path).expect("root");

        assert_eq!(
            found(&root, "lib/math").ok(),
            Some(path.join("lib/math.wat"))
        );
        assert_eq!(found(&root, "only").ok(), Some(path.join("only.wasm")));
        assert_eq!(found(&root, "dep").ok(), Some(path.join("dep.wasm")));
        assert!(matches!(
            found(&root, "missing"),
            Err(Lookup::NotFound([
                (_, Passed::Missing),
                (_, Passed::Missing)
            ]))
        ));
        assert!(matches!(
            found(&root, "../x"),
            Err(Lookup::Bad(BadName::NotPlain))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_passed_over_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().canonicalize().expect("canonical");
        let fifo =
            std::ffi::CString::new(path.join("pipe.wat").into_os_string().into_encoded_bytes())
                .expect("no NUL");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");
        let root = Root::open(&path).expect("root");
        let Err(Lookup::NotFound([(_, Passed::NotAFile(why)), _])) = found(&root, "pipe") else {
            panic!("a FIFO is not a module file");
        };
        assert!(why.to_string().contains("a FIFO"), "{why}");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_root_are_as_missing_whether_the_target_exists_or_not() {
        let outside = tempfile::tempdir().expect("tempdir");
        let root_dir = tempfile::tempdir().expect("tempdir");
        let path = root_dir.path().canonicalize().expect("canonical");
        std::fs::write(outside.path().join("secret.wat"), "(module)").expect("write");
        let link = |name: &str, target: &Path| {
            std::os::unix::fs::symlink(target, path.join(name)).expect("symlink");
        };
        link("exists.wat", &outside.path().join("secret.wat"));
        link("absent.wat", &outside.path().join("absent.wat"));
        link("up.wat", Path::new("../../../../../../../../etc/passwd"));
        std::fs::create_dir(path.join("sub")).expect("mkdir");
        std::fs::write(path.join("inside.wat"), "(module)").expect("write");
        link("sub/in.wat", Path::new("../inside.wat"));
        let root = Root::open(&path).expect("root");

        for name in ["exists", "absent", "up"] {
            assert!(
                matches!(
                    found(&root, name),
                    Err(Lookup::NotFound([
                        (_, Passed::Outside),
                        (_, Passed::Missing)
                    ]))
                ),
                "{name}"
            );
        }
        assert_eq!(found(&root, "sub/in").ok(), Some(path.join("sub/in.wat")));
    }

    /// Found by `fuzz/` (target `live_use`): too long for the file system is
    /// missing, not unreadable.
    #[test]
    fn a_name_too_long_for_the_file_system_is_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Root::open(&dir.path().canonicalize().expect("canonical")).expect("root");
        let names = [
            "l".repeat(300),
            format!("{}/x", "d".repeat(300)),
            format!("{}ab", "a/".repeat(2047)),
        ];
        for name in names {
            assert_eq!(check(&name), Ok(()), "a plain name");
            assert!(
                matches!(
                    found(&root, &name),
                    Err(Lookup::NotFound([
                        (_, Passed::Missing),
                        (_, Passed::Missing)
                    ]))
                ),
                "{} bytes",
                name.len()
            );
        }
    }
}
