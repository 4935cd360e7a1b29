//! Whether a file is still being written: the save-is-finished signal for
//! watchers and moments that have no close-after-write event.

use std::path::Path;

/// True when some process has `file` open for writing: a read lease cannot be
/// taken on a file open for writing anywhere on this machine. Where leases are
/// not to be had (network file systems, a file someone else owns) we cannot
/// tell, and say no: the file is then run as found, and again when it changes.
#[cfg(target_os = "linux")]
pub(super) fn being_written(file: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(file)
        .is_ok_and(|opened| being_written_file(&opened))
}

/// [`being_written`] of a file we opened for reading (and only for reading:
/// a lease is refused on our own write access).
#[cfg(target_os = "linux")]
pub(super) fn being_written_file(opened: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    static IGNORE_LEASE_BREAKS: std::sync::Once = std::sync::Once::new();
    IGNORE_LEASE_BREAKS.call_once(ignore_lease_breaks);
    let fd = opened.as_raw_fd();
    // SAFETY: `fd` is a descriptor `opened` owns for the whole block; F_SETLEASE
    // takes an int argument and changes nothing but the lease on this open file.
    unsafe {
        if libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) == 0 {
            libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK);
            return false;
        }
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
}

/// Elsewhere there are no leases: we cannot tell, and say no.
#[cfg(not(target_os = "linux"))]
pub(super) fn being_written(_: &Path) -> bool {
    false
}

/// Elsewhere there are no leases: we cannot tell, and say no.
#[cfg(not(target_os = "linux"))]
pub(super) fn being_written_file(_: &std::fs::File) -> bool {
    false
}

/// A writer opening the file while we hold our (microseconds long) lease makes
/// the kernel signal us with SIGIO, whose default action ends the process.
#[cfg(target_os = "linux")]
fn ignore_lease_breaks() {
    // SAFETY: setting a signal's disposition to "ignore" runs no code of ours in
    // a signal handler; nothing else in live-wasm uses SIGIO.
    unsafe {
        libc::signal(libc::SIGIO, libc::SIG_IGN);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_open_for_writing_is_being_written_until_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let mut file = std::fs::File::create(&path).expect("create");
        file.write_all(b"half").expect("write");
        assert!(being_written(&path));
        drop(file);
        assert!(!being_written(&path));
        assert!(!being_written(&dir.path().join("missing")));
    }
}
