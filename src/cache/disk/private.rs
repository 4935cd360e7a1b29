//! Who may write the disk cache: the one platform-dependent part of it.
//!
//! On Unix the folder and each entry must be ours, and neither group nor
//! others may write them (owner and mode, checked through `stat`). Elsewhere
//! (Windows) who may write a folder is set by ACLs, which are not checked: no
//! folder is trusted, and sessions there run without the disk cache.

use std::fs::File;
use std::path::Path;

/// Why the cache folder `dir` must not be used, if it must not: someone else
/// owns it, or its group or others may write it, so an entry in it may be
/// anyone's code. `None` also when it does not exist (it will be made private)
/// or cannot be looked at (nothing can be loaded from it either).
#[cfg(unix)]
pub(crate) fn distrust(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).ok()?;
    let mode = meta.mode() & 0o7777;
    let chmod = format!("`chmod go-w {}` to use it", dir.display());
    let (why, fix) = if !meta.is_dir() {
        (
            "is not a folder".to_owned(),
            "--cache DIR for one".to_owned(),
        )
    } else if meta.uid() != our_uid() {
        let owner = meta.uid();
        let why = format!("is owned by user {owner}, not by you (user {})", our_uid());
        (why, "--cache DIR for one of your own".to_owned())
    } else if mode & 0o002 != 0 {
        let why = format!("is writable by others (mode {mode:o})");
        (why, format!("{chmod}, or --cache DIR for another"))
    } else if mode & 0o020 != 0 {
        let why = format!("is writable by its group (mode {mode:o})");
        (why, format!("{chmod}, or --cache DIR for another"))
    } else {
        return None;
    };
    Some(format!(
        "not using the cache folder {}: it {why}, and its files would run as code. \
         Running without the disk cache ({fix})",
        dir.display()
    ))
}

/// Elsewhere every folder is distrusted: who may write it is not checked.
#[cfg(not(unix))]
pub(crate) fn distrust(dir: &Path) -> Option<String> {
    Some(format!(
        "not using the cache folder {}: who may write it is not checked on this \
         system, and its files would run as code. Running without the disk cache",
        dir.display()
    ))
}

/// Our effective user id: the owner of the files we create.
#[cfg(unix)]
fn our_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The entry at `path` if it is a regular file of ours that neither group nor
/// others may write: opened without following a symlink, nor blocking on a
/// FIFO or a device, and checked through the descriptor, which is what is
/// then read and mapped.
#[cfg(unix)]
pub(super) fn open_own_entry(path: &Path) -> Option<File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    let own = meta.is_file() && meta.uid() == our_uid() && meta.mode() & 0o022 == 0;
    own.then_some(file)
}

/// Elsewhere no entry is trusted.
#[cfg(not(unix))]
pub(super) fn open_own_entry(_: &Path) -> Option<File> {
    None
}

/// Creates `dir` readable by its owner only: its files are loaded as code.
#[cfg(unix)]
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Elsewhere the folder gets its parent's ACLs (and is then distrusted).
#[cfg(not(unix))]
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).create(dir)
}

/// A path that the system resolves to the very file `file` has open
/// (`/proc/self/fd/N`, `/dev/fd/N`), whatever is at its name by now.
#[cfg(unix)]
pub(super) fn path_of_open(file: &File) -> Option<std::path::PathBuf> {
    use std::os::fd::AsRawFd;
    let fds = if cfg!(target_os = "linux") {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    Some(Path::new(fds).join(file.as_raw_fd().to_string()))
}

/// Elsewhere there is none: the file is read through its handle.
#[cfg(not(unix))]
pub(super) fn path_of_open(_: &File) -> Option<std::path::PathBuf> {
    None
}
