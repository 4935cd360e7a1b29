//! The file calls of WASI preview 1, shadowed: `path_open` and
//! `path_filestat_get` note the path (in the run's [`FileAccess`](crate::run::files::FileAccess)) and then call
//! wasmtime-wasi's own implementation with the caller's memory; the calls that
//! change a folder announce their names as the guest's writes first.

use anyhow::Result;
use wasmtime::component::ResourceTableError;
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as wasi;

use crate::run::files::{Access, Answer, Held, guest_bytes};
use crate::run::host::{Host, memory_and_host};

const MODULE: &str = "wasi_snapshot_preview1";
/// `EMFILE`: too many open files.
const ERRNO_MFILE: i32 = 33;

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
pub(super) fn shadow(linker: &mut Linker<Host>) -> Result<()> {
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
            if let Some((dir, name)) = name {
                let opened = || {
                    let fd = guest_bytes(bytes, opened, 4)?;
                    Some(Held::Fd(u32::from_le_bytes(fd.try_into().ok()?)))
                };
                let answer = Answer::of_errno(errno);
                host.files.note(dir, &name, access, answer, opened);
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
            if let Some((dir, name)) = name {
                let answer = Answer::of_errno(errno);
                host.files.note(dir, &name, Access::Read, answer, || None);
            }
            Ok(errno)
        },
    )?;
    shadow_folder_changes(linker)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Announces the names a call is about to change as the guest's writes
/// (`changed`: descriptor, pointer, length each), after remembering which
/// file `moved` (a rename's or a link's source) stands for.
fn before_change<'a>(
    caller: &'a mut Caller<'_, Host>,
    changed: &[(i32, i32, i32)],
    moved: Option<(i32, i32, i32)>,
) -> wasmtime::Result<(&'a mut [u8], &'a mut Host)> {
    let (bytes, host) = memory_and_host(caller)?;
    if let Some((fd, ptr, len)) = moved
        && let Some(dir) = Held::fd(fd)
        && let Some(name) = guest_bytes(bytes, ptr, len)
    {
        host.files.remember_written(dir, name);
    }
    for &(fd, ptr, len) in changed {
        if let Some(dir) = Held::fd(fd)
            && let Some(name) = guest_bytes(bytes, ptr, len)
        {
            host.files.announce_write(dir, name);
        }
    }
    Ok((bytes, host))
}

/// Shadows the calls that change a folder with versions that announce what
/// they change first: a guest renaming a file over one it read, or
/// unlinking it, changes it as much as writing it does.
fn shadow_folder_changes(linker: &mut Linker<Host>) -> Result<()> {
    use wasmtime_wasi::runtime::in_tokio;
    /// The calls of one name under one descriptor.
    macro_rules! one_name {
        ($name:literal, $call:path) => {
            linker.func_wrap(
                MODULE,
                $name,
                |mut caller: Caller<'_, Host>, fd: i32, path: i32, len: i32| {
                    let (bytes, host) = before_change(&mut caller, &[(fd, path, len)], None)?;
                    let mut guest = wiggle::GuestMemory::Unshared(bytes);
                    in_tokio($call(&mut host.wasi, &mut guest, fd, path, len))
                },
            )?;
        };
    }
    one_name!("path_unlink_file", wasi::path_unlink_file);
    one_name!("path_create_directory", wasi::path_create_directory);
    one_name!("path_remove_directory", wasi::path_remove_directory);
    linker.func_wrap(
        MODULE,
        "path_rename",
        |mut caller: Caller<'_, Host>,
         fd: i32,
         old: i32,
         old_len: i32,
         new_fd: i32,
         new: i32,
         new_len: i32| {
            let names = [(fd, old, old_len), (new_fd, new, new_len)];
            let (bytes, host) = before_change(&mut caller, &names, Some(names[0]))?;
            let mut guest = wiggle::GuestMemory::Unshared(bytes);
            in_tokio(wasi::path_rename(
                &mut host.wasi,
                &mut guest,
                fd,
                old,
                old_len,
                new_fd,
                new,
                new_len,
            ))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_link",
        |mut caller: Caller<'_, Host>,
         old_fd: i32,
         flags: i32,
         old: i32,
         old_len: i32,
         new_fd: i32,
         new: i32,
         new_len: i32| {
            let changed = [(new_fd, new, new_len)];
            let (bytes, host) = before_change(&mut caller, &changed, Some((old_fd, old, old_len)))?;
            let mut guest = wiggle::GuestMemory::Unshared(bytes);
            in_tokio(wasi::path_link(
                &mut host.wasi,
                &mut guest,
                old_fd,
                flags,
                old,
                old_len,
                new_fd,
                new,
                new_len,
            ))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_symlink",
        |mut caller: Caller<'_, Host>, old: i32, old_len: i32, fd: i32, new: i32, new_len: i32| {
            let (bytes, host) = before_change(&mut caller, &[(fd, new, new_len)], None)?;
            let mut guest = wiggle::GuestMemory::Unshared(bytes);
            in_tokio(wasi::path_symlink(
                &mut host.wasi,
                &mut guest,
                old,
                old_len,
                fd,
                new,
                new_len,
            ))
        },
    )?;
    Ok(())
}
