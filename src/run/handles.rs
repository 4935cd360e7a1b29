//! How many handles (open files and folders, sockets, streams) a guest may
//! hold at once: the process's open-file limit, less a reserve the session
//! keeps for itself.
//!
//! Every file a guest holds open is a descriptor of our process. A guest that
//! opened files until the process ran out made the next save vanish: the
//! watcher could not open the saved file. Bounding wasmtime-wasi's resource
//! table (one entry per handle) keeps the reserve free; a guest that hits the
//! bound is refused with `EMFILE`, as a process at its limit is.

use std::sync::OnceLock;

use wasmtime::component::ResourceTable;

/// The most descriptors the session keeps for itself: at rest it holds about
/// ten (the watcher, the runner, stdio); a run adds the module files it reads,
/// the disk cache, a build's pipes.
const RESERVE: u64 = 256;

/// Bounds `table`, the resources of one run, to what the process can spare
/// (the limit read once: a system call less on each run's path).
pub(super) fn bound(table: &mut ResourceTable) {
    static LIMIT: OnceLock<Option<usize>> = OnceLock::new();
    if let Some(limit) = *LIMIT.get_or_init(guest_limit) {
        table.set_max_capacity(table.max_capacity().min(limit));
    }
}

/// The handles a guest may hold: the open-file limit less the reserve (a
/// quarter of the limit when it is small); `None` when there is no limit.
fn guest_limit() -> Option<usize> {
    let files = open_file_limit()?;
    let limit = files - RESERVE.min(files / 4);
    Some(usize::try_from(limit).unwrap_or(usize::MAX))
}

/// The process's soft limit on open files.
#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a pointer to ours.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    // `rlim_t` is narrower than u64 on some 32-bit systems.
    #[allow(clippy::unnecessary_cast)]
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as u64)
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

// Elsewhere there is no open-file limit to test against.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_kept_and_wasmtime_s_own_bound_never_raised() {
        let files = open_file_limit().expect("an open-file limit");
        let limit = guest_limit().expect("a guest limit") as u64;
        assert!(
            limit < files && limit >= files * 3 / 4,
            "{limit} of {files}"
        );
        let mut table = ResourceTable::new();
        let default = table.max_capacity();
        bound(&mut table);
        assert_eq!(table.max_capacity() as u64, limit.min(default as u64));
    }
}
