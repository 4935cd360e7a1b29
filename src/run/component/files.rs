//! The files a component opens through `wasi:filesystem` (WASI 0.2), noted
//! as a core module's are ([`crate::run::files`]): what it reads joins the
//! watched set, and what it writes, renames, links or removes never starts
//! a run.
//!
//! `open-at`, `stat-at`, `rename-at`, `link-at`, `symlink-at`,
//! `unlink-file-at`, `create-directory-at` and `remove-directory-at` of
//! `descriptor` are shadowed by functions that note the name (a change's
//! names announced as the guest's writes before the call), then call
//! wasmtime-wasi's own implementation. A write through a descriptor (`write`,
//! `write-via-stream`, `append-via-stream`, `set-size`) needs a file opened
//! for writing, announced when it was opened.
//!
//! The directory a name is relative to is the one the guest holds: its
//! `descriptor` resource, told apart by the folder handle in it
//! ([`FileAccess::held`]). A handle an `open-at` of this run returned is the
//! folder that call named; any other is a granted folder when it is the same
//! folder (device and inode) as a preopen. The host never reads a folder's
//! path back from the system (`/proc/self/fd`): a guest can rename the
//! folders it holds, and the name kept is the one the host checked, beneath
//! its granted folder. A name under a folder known neither way is not noted,
//! and nothing is looked at for it.

use anyhow::Result;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView};
use wasmtime_wasi::p2::FsResult;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    DescriptorFlags, DescriptorStat, ErrorCode, Host as _, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::{WasiCtxView, WasiView};

use crate::run::files::{Access, Answer, FileAccess, Held};
use crate::run::host::Host;

/// The interface as wasmtime-wasi 50 (and 48) defines it; imports of other 0.2
/// versions resolve to it (the linker matches semver-compatible names).
const TYPES: &str = "wasi:filesystem/types@0.2.12";

/// What a call returns to the guest.
type Answered<T> = wasmtime::Result<(Result<T, ErrorCode>,)>;

/// A directory descriptor of the guest's.
type Dir = Resource<Descriptor>;

/// The run's file notes and the filesystem's state, apart.
fn split<'a>(
    store: &'a mut StoreContextMut<'_, Host>,
) -> (&'a mut FileAccess, WasiFilesystemCtxView<'a>) {
    let Host { wasi, files, .. } = store.data_mut();
    let WasiCtxView { ctx, table } = wasi.ctx();
    let filesystem = WasiFilesystemCtxView {
        ctx: ctx.filesystem(),
        table,
    };
    (files, filesystem)
}

/// The folder the guest's descriptor `dir` stands for, if known.
fn held(files: &mut FileAccess, table: &ResourceTable, dir: &Dir) -> Option<Held> {
    match table.get(dir).ok()? {
        Descriptor::Dir(folder) => files.held(dir.rep(), &folder.dir),
        Descriptor::File(_) => None,
    }
}

/// Announces `name` under `dir` as the guest's write.
fn announce(files: &mut FileAccess, table: &ResourceTable, dir: &Dir, name: &str) {
    if let Some(held) = held(files, table, dir) {
        files.announce_write(held, name.as_bytes());
    }
}

/// Remembers the file `name` under `dir` stands for as the guest's own.
fn remember(files: &mut FileAccess, table: &ResourceTable, dir: &Dir, name: &str) {
    if let Some(held) = held(files, table, dir) {
        files.remember_written(held, name.as_bytes());
    }
}

/// A result as the guest receives it: an error becomes its `error-code`,
/// or a trap (what wasmtime-wasi's own binding does).
fn to_guest<T>(fs: &mut WasiFilesystemCtxView<'_>, result: FsResult<T>) -> Answered<T> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        Err(err) => Ok((Err(fs.convert_error_code(err)?),)),
    }
}

/// What the call answered, for noting.
fn answer<T>(result: &Result<T, ErrorCode>) -> Answer {
    match result {
        Ok(_) => Answer::Done,
        Err(ErrorCode::NoEntry) => Answer::Missing,
        Err(_) => Answer::Refused,
    }
}

/// What an `open-at` is for, from its flags (as `path_open`'s).
fn access(open: OpenFlags, flags: DescriptorFlags) -> Access {
    Access::of(
        open.contains(OpenFlags::DIRECTORY),
        open.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE)
            || flags.contains(DescriptorFlags::WRITE),
    )
}

/// Replaces the calls of `descriptor` that open, look up or change a name in
/// `linker` with versions that note it.
pub(super) fn shadow(linker: &mut Linker<Host>) -> Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(TYPES)?;
    types.func_wrap(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, Host>,
         (dir, path_flags, path, open, flags): (
            Dir,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )|
         -> Answered<Dir> {
            let (files, mut fs) = split(&mut store);
            let access = access(open, flags);
            let name = held(files, fs.table, &dir)
                .and_then(|held| Some((held, files.before_open(held, path.as_bytes(), access)?)));
            let result = HostDescriptor::open_at(&mut fs, dir, path_flags, path, open, flags);
            let (result,) = to_guest(&mut fs, result)?;
            if let Some((held, name)) = name {
                // A folder, whatever the flags asked: later names may be under it.
                let folder = match result.as_ref().map(|opened| (opened, fs.table.get(opened))) {
                    Ok((opened, Ok(Descriptor::Dir(folder)))) => {
                        Some(files.hold(opened.rep(), &folder.dir))
                    }
                    _ => None,
                };
                let access = folder.map_or(access, |_| Access::Folder);
                files.note(held, &name, access, answer(&result), || folder);
            }
            Ok((result,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.stat-at",
        |mut store: StoreContextMut<'_, Host>,
         (dir, path_flags, path): (Dir, PathFlags, String)|
         -> Answered<DescriptorStat> {
            let (files, mut fs) = split(&mut store);
            let name = held(files, fs.table, &dir).and_then(|held| {
                Some((
                    held,
                    files.before_open(held, path.as_bytes(), Access::Read)?,
                ))
            });
            let result = HostDescriptor::stat_at(&mut fs, dir, path_flags, path);
            let (result,) = to_guest(&mut fs, result)?;
            if let Some((held, name)) = name {
                files.note(held, &name, Access::Read, answer(&result), || None);
            }
            Ok((result,))
        },
    )?;
    shadow_folder_changes(&mut types)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Shadows the calls that change a folder with versions that announce what
/// they change first: a component renaming a file over one in a watched
/// folder, or removing it, changes it as much as writing it does.
fn shadow_folder_changes(types: &mut wasmtime::component::LinkerInstance<'_, Host>) -> Result<()> {
    /// The calls of one name under one descriptor.
    macro_rules! one_name {
        ($name:literal, $call:path) => {
            types.func_wrap(
                $name,
                |mut store: StoreContextMut<'_, Host>,
                 (dir, path): (Dir, String)|
                 -> Answered<()> {
                    let (files, mut fs) = split(&mut store);
                    announce(files, fs.table, &dir, &path);
                    let result = $call(&mut fs, dir, path);
                    to_guest(&mut fs, result)
                },
            )?;
        };
    }
    one_name!(
        "[method]descriptor.unlink-file-at",
        HostDescriptor::unlink_file_at
    );
    one_name!(
        "[method]descriptor.create-directory-at",
        HostDescriptor::create_directory_at
    );
    one_name!(
        "[method]descriptor.remove-directory-at",
        HostDescriptor::remove_directory_at
    );
    types.func_wrap(
        "[method]descriptor.rename-at",
        |mut store: StoreContextMut<'_, Host>,
         (dir, old, new_dir, new): (Dir, String, Dir, String)|
         -> Answered<()> {
            let (files, mut fs) = split(&mut store);
            remember(files, fs.table, &dir, &old);
            announce(files, fs.table, &dir, &old);
            announce(files, fs.table, &new_dir, &new);
            let result = HostDescriptor::rename_at(&mut fs, dir, old, new_dir, new);
            to_guest(&mut fs, result)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.link-at",
        |mut store: StoreContextMut<'_, Host>,
         (dir, old_flags, old, new_dir, new): (Dir, PathFlags, String, Dir, String)|
         -> Answered<()> {
            let (files, mut fs) = split(&mut store);
            remember(files, fs.table, &dir, &old);
            announce(files, fs.table, &new_dir, &new);
            let result = HostDescriptor::link_at(&mut fs, dir, old_flags, old, new_dir, new);
            to_guest(&mut fs, result)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.symlink-at",
        |mut store: StoreContextMut<'_, Host>,
         (dir, target, new): (Dir, String, String)|
         -> Answered<()> {
            let (files, mut fs) = split(&mut store);
            announce(files, fs.table, &dir, &new);
            let result = HostDescriptor::symlink_at(&mut fs, dir, target, new);
            to_guest(&mut fs, result)
        },
    )?;
    Ok(())
}
