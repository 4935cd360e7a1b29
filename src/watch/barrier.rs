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
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A folder of our own in the temporary directory, removed when dropped (the
/// watcher is dropped when the session ends, on a signal too).
pub(super) struct Barrier {
    dir: tempfile::TempDir,
    marks: u64,
}

impl Barrier {
    pub(super) fn new() -> Result<Barrier> {
        // tempfile makes it with mkdir under a random name, retried until new;
        // the mode must be asked for (its default is 0777 less the umask).
        let dir = tempfile::Builder::new()
            .prefix(&format!("live-wasm-{}-", std::process::id()))
            .permissions(std::fs::Permissions::from_mode(0o700))
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

/// Creates the file `path`, failing if anything, a symlink too, is there.
fn create_new(path: &Path) -> io::Result<File> {
    File::options()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
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
