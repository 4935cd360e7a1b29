//! The files a guest opens through WASI: what a run read joins the watched set
//! for the next run (so `import helper` makes `helper.py` live, as `use` makes a
//! module file live), and what it wrote never starts a run.
//!
//! `path_open` and `path_filestat_get` of `wasi_snapshot_preview1` are shadowed
//! by functions that note the path and then call wasmtime-wasi's own
//! implementation with the caller's memory. A path is resolved on the host
//! relative to the folder its directory descriptor stands for: a preopen, or a
//! folder the guest opened. Noting costs a hash-set lookup per call.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use anyhow::Result;
use crossbeam_channel::Sender;
use wasmtime::component::ResourceTableError;
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as wasi;

use super::host::{Host, memory_and_host};
use crate::plan::Preopen;
use crate::source::{Fingerprint, ReadFile};

const MODULE: &str = "wasi_snapshot_preview1";
/// The first descriptor after stdin, stdout and stderr: the first preopen.
const FIRST_PREOPEN: u32 = 3;
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_NOENT: i32 = 44;
/// Too many open files.
const ERRNO_MFILE: i32 = 33;
/// `oflags`: create, directory, truncate.
const O_CREAT: i32 = 1;
const O_DIRECTORY: i32 = 2;
const O_TRUNC: i32 = 8;
/// `rights`: fd_write.
const RIGHT_FD_WRITE: i64 = 1 << 6;

/// What an open is for, from its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// A folder: later paths may be relative to it.
    Folder,
    /// Creating, truncating or writing a file.
    Write,
    /// Reading a file, or looking at it (`stat`).
    Read,
}

impl Access {
    fn of_open(oflags: i32, rights: i64) -> Access {
        if oflags & O_DIRECTORY != 0 {
            Access::Folder
        } else if oflags & (O_CREAT | O_TRUNC) != 0 || rights & RIGHT_FD_WRITE != 0 {
            Access::Write
        } else {
            Access::Read
        }
    }
}

/// What one run opened, and where its writes are announced.
pub struct FileAccess {
    /// The host folder of each directory descriptor the run holds.
    dirs: HashMap<u32, PathBuf>,
    /// Every file read or looked for, in order, once.
    read: Vec<ReadFile>,
    noted: HashSet<PathBuf>,
    /// The names already read, as the guest gave them, per directory
    /// descriptor: a file read again costs a lookup, no allocation.
    seen: HashMap<u32, HashSet<Box<[u8]>>>,
    /// Every file opened for writing.
    written: HashSet<PathBuf>,
    /// Told of a write before it happens, so its file event is known for the
    /// guest's own.
    announce: Sender<PathBuf>,
}

impl FileAccess {
    /// Nothing opened yet; the preopens are descriptors 3, 4, ... in order.
    pub fn new(preopens: &[Preopen], announce: Sender<PathBuf>) -> Self {
        let dirs = (FIRST_PREOPEN..)
            .zip(preopens)
            .map(|(fd, preopen)| (fd, preopen.host.clone()))
            .collect();
        Self {
            dirs,
            read: Vec::new(),
            noted: HashSet::new(),
            seen: HashMap::new(),
            written: HashSet::new(),
            announce,
        }
    }

    /// The files the run read or looked for and did not write, in order.
    pub fn read(&self) -> Vec<ReadFile> {
        self.read
            .iter()
            .filter(|file| !self.written.contains(&file.path))
            .cloned()
            .collect()
    }

    /// Before a call that opens the guest's path `ptr..ptr + len` under
    /// `dirfd` for `access`: announces a write, and returns the name to note
    /// after the call, copied (the memory goes to wasmtime-wasi next) only when
    /// this run has not noted it yet.
    fn before_call(
        &mut self,
        memory: &[u8],
        dirfd: i32,
        ptr: i32,
        len: i32,
        access: Access,
    ) -> Option<Vec<u8>> {
        let name = guest_bytes(memory, ptr, len).filter(|name| self.is_new(dirfd, name, access))?;
        if access == Access::Write {
            self.announce_write(dirfd, name);
        }
        Some(name.to_vec())
    }

    /// True unless `name` under `dirfd` is a read already noted.
    fn is_new(&self, dirfd: i32, name: &[u8], access: Access) -> bool {
        let seen = || {
            let fd = u32::try_from(dirfd).ok()?;
            Some(self.seen.get(&fd)?.contains(name))
        };
        access != Access::Read || seen() != Some(true)
    }

    /// Announces a write of `name` under `dirfd`: before the call that opens it,
    /// as opening with `O_TRUNC` already changes the file, and its events must
    /// find it known as the guest's own.
    fn announce_write(&mut self, dirfd: i32, name: &[u8]) {
        let Some(path) = u32::try_from(dirfd)
            .ok()
            .and_then(|fd| self.host_path(fd, name))
        else {
            return;
        };
        if self.written.insert(path.clone()) {
            let _ = self.announce.send(path);
        }
    }

    /// Notes what a call did with `name` under `dirfd`: `errno` is its result,
    /// `opened` the descriptor it returned (read only for a folder).
    fn note(
        &mut self,
        dirfd: i32,
        name: &[u8],
        access: Access,
        errno: i32,
        opened: impl FnOnce() -> Option<u32>,
    ) {
        let Ok(fd) = u32::try_from(dirfd) else { return };
        let Some(path) = self.host_path(fd, name) else {
            return;
        };
        match access {
            Access::Folder => {
                if errno == ERRNO_SUCCESS
                    && let Some(opened) = opened()
                {
                    // A reused descriptor is another folder now.
                    self.seen.remove(&opened);
                    self.dirs.insert(opened, path);
                }
            }
            // Announced before the call.
            Access::Write => {}
            // The first time, with the file's fingerprint (one `stat`): a save
            // before the watcher has it is still seen.
            Access::Read if errno == ERRNO_SUCCESS || errno == ERRNO_NOENT => {
                self.seen.entry(fd).or_default().insert(name.into());
                if self.noted.insert(path.clone()) {
                    let seen = Fingerprint::of(&path);
                    self.read.push(ReadFile { path, seen });
                }
            }
            Access::Read => {}
        }
    }

    /// `name` (a path as the guest wrote it) relative to directory descriptor
    /// `fd`, on the host; `None` for a descriptor that is not a known folder.
    fn host_path(&self, fd: u32, name: &[u8]) -> Option<PathBuf> {
        let dir = self.dirs.get(&fd)?;
        beneath(dir, Path::new(std::str::from_utf8(name).ok()?))
    }
}

/// `relative` under `dir`, resolved by its names (`.` and `..`), or `None` when
/// it is absolute or climbs out: WASI refuses those anyway.
fn beneath(dir: &Path, relative: &Path) -> Option<PathBuf> {
    let mut path = dir.to_path_buf();
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::Normal(name) => {
                path.push(name);
                depth += 1;
            }
            Component::CurDir => {}
            Component::ParentDir => {
                depth = depth.checked_sub(1)?;
                path.pop();
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(path)
}

/// The longest path noted: the system opens no longer one (PATH_MAX), and a
/// hostile guest's 200 MB name is not copied.
const LONGEST_PATH: i32 = 4096;

/// The bytes of the guest string at `ptr..ptr + len`.
fn guest_bytes(memory: &[u8], ptr: i32, len: i32) -> Option<&[u8]> {
    if len > LONGEST_PATH {
        return None;
    }
    let start = usize::try_from(ptr).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    memory.get(start..end)
}

/// A full resource table (see `handles`) is, to a guest opening a file,
/// what a process at its open-file limit is told: `EMFILE`. wasmtime-wasi
/// would trap.
fn too_many_open(err: wasmtime::Error) -> wasmtime::Result<i32> {
    match err.downcast_ref::<ResourceTableError>() {
        Some(ResourceTableError::Full) => Ok(ERRNO_MFILE),
        _ => Err(err),
    }
}

/// Shadows `path_open` and `path_filestat_get` in `linker` with versions that
/// note what the guest opens.
pub fn shadow_path_calls(linker: &mut Linker<Host>) -> Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        MODULE,
        "path_open",
        |mut caller: Caller<'_, Host>,
         dirfd: i32,
         dirflags: i32,
         path: i32,
         path_len: i32,
         oflags: i32,
         rights: i64,
         inheriting: i64,
         fdflags: i32,
         opened: i32|
         -> wasmtime::Result<i32> {
            let (bytes, host) = memory_and_host(&mut caller)?;
            let access = Access::of_open(oflags, rights);
            let name = host.files.before_call(bytes, dirfd, path, path_len, access);
            let mut guest = wiggle::GuestMemory::Unshared(bytes);
            let errno = wasmtime_wasi::runtime::in_tokio(wasi::path_open(
                &mut host.wasi,
                &mut guest,
                dirfd,
                dirflags,
                path,
                path_len,
                oflags,
                rights,
                inheriting,
                fdflags,
                opened,
            ))
            .or_else(too_many_open)?;
            if let Some(name) = name {
                let opened = || {
                    let fd = guest_bytes(bytes, opened, 4)?;
                    Some(u32::from_le_bytes(fd.try_into().ok()?))
                };
                host.files.note(dirfd, &name, access, errno, opened);
            }
            Ok(errno)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_filestat_get",
        |mut caller: Caller<'_, Host>,
         dirfd: i32,
         flags: i32,
         path: i32,
         path_len: i32,
         stat: i32|
         -> wasmtime::Result<i32> {
            let (bytes, host) = memory_and_host(&mut caller)?;
            let name = host
                .files
                .before_call(bytes, dirfd, path, path_len, Access::Read);
            let mut guest = wiggle::GuestMemory::Unshared(bytes);
            let errno = wasmtime_wasi::runtime::in_tokio(wasi::path_filestat_get(
                &mut host.wasi,
                &mut guest,
                dirfd,
                flags,
                path,
                path_len,
                stat,
            ))?;
            if let Some(name) = name {
                host.files.note(dirfd, &name, Access::Read, errno, || None);
            }
            Ok(errno)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_beneath_their_folder_or_not_at_all() {
        let dir = Path::new("/project");
        assert_eq!(
            beneath(dir, Path::new("lib/./helper.py")),
            Some(PathBuf::from("/project/lib/helper.py"))
        );
        assert_eq!(
            beneath(dir, Path::new("lib/../main.py")),
            Some(PathBuf::from("/project/main.py"))
        );
        assert_eq!(
            beneath(dir, Path::new(".")),
            Some(PathBuf::from("/project"))
        );
        assert_eq!(beneath(dir, Path::new("../etc/passwd")), None);
        assert_eq!(beneath(dir, Path::new("lib/../../x")), None);
        assert_eq!(beneath(dir, Path::new("/etc/passwd")), None);
    }

    #[test]
    fn reads_are_noted_once_and_written_files_are_not_reads() {
        let (announce, announced) = crossbeam_channel::unbounded();
        let preopen = Preopen {
            host: PathBuf::from("/project"),
            guest: ".".to_owned(),
            read_only: false,
        };
        let mut files = FileAccess::new(&[preopen], announce);
        let mut open = |name: &[u8], access, errno| {
            let len = i32::try_from(name.len()).expect("short name");
            if let Some(name) = files.before_call(name, 3, 0, len, access) {
                files.note(3, &name, access, errno, || Some(9));
            }
        };
        open(b"helper.py", Access::Read, ERRNO_SUCCESS);
        open(b"later.py", Access::Read, ERRNO_NOENT);
        open(b"./helper.py", Access::Read, ERRNO_SUCCESS);
        open(b"helper.py", Access::Read, ERRNO_SUCCESS);
        open(b"denied.py", Access::Read, 2);
        open(b"out.txt", Access::Read, ERRNO_SUCCESS);
        open(b"out.txt", Access::Write, ERRNO_SUCCESS);
        open(b"out.txt", Access::Write, ERRNO_SUCCESS);
        open(b"lib", Access::Folder, ERRNO_SUCCESS);
        files.note(9, b"inner.py", Access::Read, ERRNO_SUCCESS, || None);
        files.note(4, b"elsewhere.py", Access::Read, ERRNO_SUCCESS, || None);

        let read: Vec<PathBuf> = files.read().into_iter().map(|file| file.path).collect();
        let expected = ["helper.py", "later.py", "lib/inner.py"];
        let expected: Vec<PathBuf> = expected
            .iter()
            .map(|name| Path::new("/project").join(name))
            .collect();
        assert_eq!(
            read, expected,
            "./helper.py is another name for the same file"
        );
        let written: Vec<PathBuf> = announced.try_iter().collect();
        assert_eq!(written, vec![PathBuf::from("/project/out.txt")]);
    }
}
