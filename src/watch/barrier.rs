//! The watcher's barrier: a private folder in the temporary directory where a
//! marker file is written when the session needs to know that every event
//! before it has been read (see `Watcher::settle`).
//!
//! The temporary directory is shared with other users, so the folder is made
//! as `mkdtemp` does (`live-wasm-<pid>-` and a random part, made with an
//! exclusive `mkdir` retried until the name is new, mode 0700, never reused)
//! and markers are created exclusively without following a symlink: nothing
//! someone else put there is written through, and nothing they put there can
//! end the session.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::Builder;

/// A folder of our own in the temporary directory, removed when dropped (the
/// watcher is dropped when the session ends, on a signal too).
pub(super) struct Barrier {
    dir: tempfile::TempDir,
    marks: u64,
}

impl Barrier {
    pub(super) fn new() -> Result<Barrier> {
        // tempfile makes it with mkdir under a random name, retried until new.
        let dir = private(Builder::new().prefix(&format!("live-wasm-{}-", std::process::id())))
            .tempdir()
            .with_context(|| {
                format!(
                    "cannot create a folder in {}",
                    std::env::temp_dir().display()
                )
            })?;
        Ok(Barrier { dir, marks: 0 })
    }

    /// The folder, to watch.
    pub(super) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a new mark (a new file, so even a poller sees it); returns its
    /// path. A mark that cannot be made only costs the settle's bounded wait.
    pub(super) fn mark(&mut self) -> PathBuf {
        let previous = self.dir.path().join(self.marks.to_string());
        let _ = std::fs::remove_file(previous);
        self.marks += 1;
        let path = self.dir.path().join(self.marks.to_string());
        let _ = create_new(&path);
        path
    }
}

/// On Unix the mode must be asked for (tempfile's default is 0777 less the
/// umask).
#[cfg(unix)]
fn private<'x, 'a, 'b>(builder: &'x mut Builder<'a, 'b>) -> &'x mut Builder<'a, 'b> {
    use std::os::unix::fs::PermissionsExt;
    builder.permissions(std::fs::Permissions::from_mode(0o700))
}

/// On Windows the temporary directory is by default the user's own (in their
/// profile), and the folder inherits its ACLs: tempfile sets no mode there.
#[cfg(windows)]
fn private<'x, 'a, 'b>(builder: &'x mut Builder<'a, 'b>) -> &'x mut Builder<'a, 'b> {
    builder
}

/// Creates the file `path`, failing if anything, a symlink too, is there.
#[cfg(unix)]
fn create_new(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
}

/// Creates the file `path`, failing if anything, a symlink too, is there:
/// `FILE_FLAG_OPEN_REPARSE_POINT` is Windows' `O_NOFOLLOW`.
#[cfg(windows)]
fn create_new(path: &Path) -> io::Result<File> {
    use std::os::windows::fs::OpenOptionsExt;
    const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
    File::options()
        .write(true)
        .create_new(true)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, symlink};

    #[test]
    fn the_folder_is_private_unique_and_goes_with_the_barrier() {
        let (a, b) = (Barrier::new().expect("a"), Barrier::new().expect("b"));
        assert_ne!(a.dir(), b.dir());
        let mode = std::fs::metadata(a.dir()).expect("folder").mode();
        assert_eq!(mode & 0o777, 0o700);
        let dir = a.dir().to_path_buf();
        drop(a);
        assert!(!dir.exists());
    }

    #[test]
    fn a_mark_never_writes_through_a_symlink() {
        let mut barrier = Barrier::new().expect("barrier");
        let outside = tempfile::NamedTempFile::new().expect("file");
        std::fs::write(outside.path(), "kept").expect("write");
        symlink(outside.path(), barrier.dir().join("1")).expect("symlink");
        let mark = barrier.mark();
        assert_eq!(mark, barrier.dir().join("1"));
        assert_eq!(
            std::fs::read_to_string(outside.path()).expect("read"),
            "kept"
        );
        // The next mark is a new file of ours.
        let mark = barrier.mark();
        assert!(std::fs::symlink_metadata(mark).expect("mark").is_file());
    }
}
