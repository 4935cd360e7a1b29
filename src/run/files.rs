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
use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as wasi, WasiSnapshotPreview1};

use super::host::Host;
use crate::plan::Preopen;
use crate::source::{Fingerprint, ReadFile};

const MODULE: &str = "wasi_snapshot_preview1";
/// The first descriptor after stdin, stdout and stderr: the first preopen.
const FIRST_PREOPEN: u32 = 3;
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_NOENT: i32 = 44;
/// `oflags`: create, directory, truncate.
const O_CREAT: i32 = 1;
const O_DIRECTORY: i32 = 2;
const O_TRUNC: i32 = 8;
/// `rights`: fd_write.
const RIGHT_FD_WRITE: i64 = 1 << 6;

/// What one run opened, and where its writes are announced.
pub struct FileAccess {
    /// The host folder of each directory descriptor the run holds.
    dirs: HashMap<u32, PathBuf>,
    /// Every file read or looked for, in order, once.
    read: Vec<ReadFile>,
    seen: HashSet<PathBuf>,
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
            seen: HashSet::new(),
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

    /// `path` (as the guest wrote it) relative to directory descriptor `dirfd`,
    /// on the host; `None` for a descriptor that is not a known folder.
    fn host_path(&self, dirfd: i32, path: &[u8]) -> Option<PathBuf> {
        let dir = self.dirs.get(&u32::try_from(dirfd).ok()?)?;
        beneath(dir, Path::new(std::str::from_utf8(path).ok()?))
    }

    /// Notes a read, the first time with the file's fingerprint (one `stat`):
    /// a save before the watcher has it is still seen.
    fn note_read(&mut self, path: PathBuf) {
        if self.seen.insert(path.clone()) {
            let seen = Fingerprint::of(&path);
            self.read.push(ReadFile { path, seen });
        }
    }

    fn note_write(&mut self, path: PathBuf) {
        if !self.written.contains(&path) {
            let _ = self.announce.send(path.clone());
            self.written.insert(path);
        }
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

/// The bytes of the guest string at `ptr..ptr + len`, copied (the memory is
/// handed to wasmtime-wasi next).
fn guest_bytes(memory: &[u8], ptr: i32, len: i32) -> Option<Vec<u8>> {
    let start = usize::try_from(ptr).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    memory.get(start..end).map(<[u8]>::to_vec)
}

/// The caller's memory and the store's state, ready for one of wasmtime-wasi's
/// own WASI functions: given the store's host-call fuel, as its linker does
/// (the fuel bounds what the host copies out of the guest).
fn memory_and_host<'a>(
    caller: &'a mut Caller<'_, Host>,
) -> wasmtime::Result<(&'a mut [u8], &'a mut Host)> {
    let fuel = caller.as_context_mut().hostcall_fuel();
    let Some(memory) = caller.get_export("memory").and_then(Extern::into_memory) else {
        wasmtime::bail!("missing required memory export");
    };
    let (bytes, host) = memory.data_and_store_mut(caller);
    host.wasi.set_hostcall_fuel(fuel);
    Ok((bytes, host))
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
            let name = guest_bytes(bytes, path, path_len);
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
            ))?;
            let files = &mut host.files;
            let Some(path) = name.and_then(|name| files.host_path(dirfd, &name)) else {
                return Ok(errno);
            };
            if oflags & O_DIRECTORY != 0 {
                if errno == ERRNO_SUCCESS
                    && let Some(fd) = guest_bytes(bytes, opened, 4)
                    && let Ok(fd) = <[u8; 4]>::try_from(fd)
                {
                    files.dirs.insert(u32::from_le_bytes(fd), path);
                }
            } else if oflags & (O_CREAT | O_TRUNC) != 0 || rights & RIGHT_FD_WRITE != 0 {
                files.note_write(path);
            } else if errno == ERRNO_SUCCESS || errno == ERRNO_NOENT {
                files.note_read(path);
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
            let name = guest_bytes(bytes, path, path_len);
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
            if (errno == ERRNO_SUCCESS || errno == ERRNO_NOENT)
                && let Some(path) = name.and_then(|name| host.files.host_path(dirfd, &name))
            {
                host.files.note_read(path);
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
        let path = |name: &[u8]| files.host_path(3, name).expect("known folder");
        let (helper, data, out) = (path(b"helper.py"), path(b"data.txt"), path(b"out.txt"));
        assert_eq!(files.host_path(4, b"helper.py"), None, "not a folder");
        files.note_read(helper.clone());
        files.note_read(data.clone());
        files.note_read(helper.clone());
        files.note_read(out.clone());
        files.note_write(out.clone());
        files.note_write(out.clone());
        let read: Vec<PathBuf> = files.read().into_iter().map(|file| file.path).collect();
        assert_eq!(read, vec![helper, data]);
        assert_eq!(announced.try_iter().collect::<Vec<_>>(), vec![out]);
    }
}
