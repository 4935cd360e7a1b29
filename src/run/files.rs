//! The files a guest opens through WASI: what a run read joins the watched set
//! for the next run (so `import helper` makes `helper.py` live, as `use` makes a
//! module file live), and what it wrote, renamed, linked or removed never
//! starts a run.
//!
//! `path_open` and `path_filestat_get` of `wasi_snapshot_preview1` are shadowed
//! by functions that note the path and then call wasmtime-wasi's own
//! implementation with the caller's memory; the calls that change a folder
//! (`path_rename`, `path_link`, `path_symlink`, `path_unlink_file`,
//! `path_create_directory`, `path_remove_directory`) announce their names as
//! the guest's writes first (in [`super::core_module`]). Components (WASI 0.2)
//! go through the same [`FileAccess`]: their `open-at`, `stat-at` and folder
//! changes are shadowed in [`super::component`], a directory named by the handle it holds
//! ([`Held::Handle`]). A name is kept relative to the granted folder its
//! directory descriptor stands for, and the host looks at it only beneath that
//! folder ([`crate::beneath`]). What a run can make the host keep is bounded
//! ([`NOTED_MAX`], [`NOTED_BYTES_MAX`]). Noting costs a hash-set lookup per call.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use crossbeam_channel::Sender;

use crate::beneath::{Beneath, Folder, ReadFile};
use crate::plan::Preopen;

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

/// The most files a run's reads and writes are noted for: past it the run's
/// reads are no longer watched, and its writes are taken folder by folder.
/// (CPython's start looks at a few hundred.)
pub(super) const NOTED_MAX: usize = 10_000;
/// The most bytes of names noted in one run.
pub(super) const NOTED_BYTES_MAX: usize = 4 << 20;

/// What an open is for, from its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// A folder: later paths may be relative to it.
    Folder,
    /// Creating, truncating or writing a file.
    Write,
    /// Reading a file, or looking at it (`stat`).
    Read,
}

impl Access {
    pub(super) fn of_open(oflags: i32, rights: i64) -> Access {
        Access::of(
            oflags & O_DIRECTORY != 0,
            oflags & (O_CREAT | O_TRUNC) != 0 || rights & RIGHT_FD_WRITE != 0,
        )
    }

    /// An open that asks for a `folder`, or else one that `writes` (creates,
    /// truncates, or may write).
    pub(super) fn of(folder: bool, writes: bool) -> Access {
        if folder {
            Access::Folder
        } else if writes {
            Access::Write
        } else {
            Access::Read
        }
    }
}

/// What a call answered, as far as noting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// It did what was asked.
    Done,
    /// No such file: looked for, so watched for its coming.
    Missing,
    /// Anything else: nothing to note.
    Refused,
}

impl Answer {
    pub(super) fn of_errno(errno: i32) -> Answer {
        match errno {
            ERRNO_SUCCESS => Answer::Done,
            ERRNO_NOENT => Answer::Missing,
            _ => Answer::Refused,
        }
    }
}

/// A directory the guest holds, as the host tells it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Held {
    /// A WASI preview 1 descriptor number (core modules).
    Fd(u32),
    /// The representation of a component's `descriptor` resource (WASI 0.2),
    /// checked against the folder handle it stood for (see
    /// [`FileAccess::held`]).
    Handle(u32),
}

impl Held {
    /// A preview 1 descriptor; `None` for a negative one.
    pub(super) fn fd(fd: i32) -> Option<Held> {
        u32::try_from(fd).ok().map(Held::Fd)
    }
}

/// What one run opened, and where its writes are announced.
pub(super) struct FileAccess {
    /// The granted folder, and the path in it, of each directory descriptor
    /// the run holds.
    dirs: HashMap<Held, Beneath>,
    /// The granted folders, as opened for the run.
    preopens: Vec<Beneath>,
    /// Their device and inode, read at a component's first call on a
    /// preopen (never, for a core module).
    roots: Option<Vec<((u64, u64), Beneath)>>,
    /// The folder handle each [`Held::Handle`] in `dirs` stood for: a
    /// resource representation reused for another descriptor is known by its
    /// handle (weak: the guest's drop closes it; the allocation kept here
    /// cannot be another handle's).
    handles: HashMap<u32, Weak<File>>,
    /// Every file read or looked for, in order, once.
    read: Vec<ReadFile>,
    noted: HashSet<PathBuf>,
    /// The names already read, as the guest gave them, per directory
    /// descriptor: a file read again costs a lookup, no allocation.
    seen: HashMap<Held, HashSet<Box<[u8]>>>,
    /// Every path the guest wrote, renamed, linked or removed.
    written: HashSet<PathBuf>,
    /// The files (device, inode) the guest wrote or moved: a file read under
    /// another name (a symlink, a rename over it) is the guest's own too.
    written_files: HashSet<(u64, u64)>,
    /// How many names and bytes are noted, against [`NOTED_MAX`] and
    /// [`NOTED_BYTES_MAX`].
    noted_count: usize,
    noted_bytes: usize,
    /// The bounds were reached: what the run could not note, in words.
    overflow: Option<String>,
    /// Told of a write before it happens, so its file event is known for the
    /// guest's own; a granted folder's own path when the run wrote too many
    /// files to name each.
    announce: Sender<PathBuf>,
}

impl FileAccess {
    /// Nothing opened yet; the preopens are descriptors 3, 4, ... in order.
    /// A preopen that cannot be opened here is not noted (the run says why).
    pub(super) fn new(preopens: &[Preopen], announce: Sender<PathBuf>) -> Self {
        let opened: Vec<(u32, Beneath)> = (FIRST_PREOPEN..)
            .zip(preopens)
            .filter_map(|(fd, preopen)| {
                let folder = Folder::open(&preopen.host).ok()?;
                Some((fd, Beneath::new(folder, Path::new(""))?))
            })
            .collect();
        let dirs = (opened.iter())
            .map(|(fd, dir)| (Held::Fd(*fd), dir.clone()))
            .collect();
        let preopens = opened.into_iter().map(|(_, dir)| dir).collect();
        Self {
            dirs,
            preopens,
            roots: None,
            handles: HashMap::new(),
            read: Vec::new(),
            noted: HashSet::new(),
            seen: HashMap::new(),
            written: HashSet::new(),
            written_files: HashSet::new(),
            noted_count: 0,
            noted_bytes: 0,
            overflow: None,
            announce,
        }
    }

    /// The files the run read or looked for, in order. One the guest wrote too,
    /// or that now is a file the guest wrote (renamed over it, or reached
    /// through a symlink to a file it wrote), is marked its own, seen as it is
    /// now: still watched for the user's saves.
    pub(super) fn read(&self) -> Vec<ReadFile> {
        self.read
            .iter()
            .map(|file| {
                let own = self.written.contains(&file.path)
                    || (!self.written_files.is_empty()
                        && file
                            .beneath
                            .identity()
                            .is_some_and(|id| self.written_files.contains(&id)));
                match own {
                    true => ReadFile {
                        seen: file.beneath.fingerprint(),
                        own,
                        ..file.clone()
                    },
                    false => file.clone(),
                }
            })
            .collect()
    }

    /// What the run could not note, past the bounds, in words.
    pub(super) fn overflow(&self) -> Option<&str> {
        self.overflow.as_deref()
    }

    /// Before a call that opens the guest's path `ptr..ptr + len` under
    /// `dirfd` for `access`: see [`Self::before_open`]; the directory too.
    pub(super) fn before_call(
        &mut self,
        memory: &[u8],
        dirfd: i32,
        ptr: i32,
        len: i32,
        access: Access,
    ) -> Option<(Held, Vec<u8>)> {
        let dir = Held::fd(dirfd)?;
        let name = self.before_open(dir, guest_bytes(memory, ptr, len)?, access)?;
        Some((dir, name))
    }

    /// Before a call that opens `name` under `dir` for `access`: announces a
    /// write, and returns the name to note after the call, copied (the memory
    /// goes to wasmtime-wasi next) only when this run has not noted it yet.
    pub(super) fn before_open(
        &mut self,
        dir: Held,
        name: &[u8],
        access: Access,
    ) -> Option<Vec<u8>> {
        if !self.is_new(dir, name, access) {
            return None;
        }
        if access == Access::Write {
            self.announce_write(dir, name);
        }
        Some(name.to_vec())
    }

    /// True unless `name` under `dir` is a read already noted.
    fn is_new(&self, dir: Held, name: &[u8], access: Access) -> bool {
        let seen = || Some(self.seen.get(&dir)?.contains(name));
        access != Access::Read || seen() != Some(true)
    }

    /// Counts a name of `bytes` against the bounds; false (and the overflow
    /// noted, once) when it does not fit.
    fn room_for(&mut self, bytes: usize) -> bool {
        if self.noted_count < NOTED_MAX && self.noted_bytes + bytes <= NOTED_BYTES_MAX {
            self.noted_count += 1;
            self.noted_bytes += bytes;
            return true;
        }
        if self.overflow.is_none() {
            self.overflow = Some(format!(
                "the guest opened more than {NOTED_MAX} files (or {} MiB of names) in this run: \
                 the files it read after that are not watched, and its writes are taken \
                 folder by folder",
                NOTED_BYTES_MAX >> 20
            ));
        }
        false
    }

    /// Announces a write of `name` under `dir`: before the call that opens it,
    /// as opening with `O_TRUNC` already changes the file, and its events must
    /// find it known as the guest's own. Past the bounds, the whole granted
    /// folder is announced instead (once).
    pub(super) fn announce_write(&mut self, dir: Held, name: &[u8]) {
        let Some(file) = self.named(dir, name) else {
            return;
        };
        let path = file.path();
        if self.written.contains(&path) {
            return;
        }
        let announced = match self.room_for(path.as_os_str().len()) {
            true => path,
            false => file.granted_folder(),
        };
        if self.written.insert(announced.clone()) {
            let _ = self.announce.send(announced);
        }
    }

    /// Remembers which file `name` under `dir` stands for now as one the
    /// guest wrote or moved.
    pub(super) fn remember_written(&mut self, dir: Held, name: &[u8]) {
        if let Some(id) = self.named(dir, name).and_then(|file| file.identity())
            && !self.written_files.contains(&id)
            && self.room_for(16)
        {
            self.written_files.insert(id);
        }
    }

    /// Notes what a call did with `name` under `dir`: `answer` is its result,
    /// `opened` the directory it returned (read only for a folder).
    pub(super) fn note(
        &mut self,
        dir: Held,
        name: &[u8],
        access: Access,
        answer: Answer,
        opened: impl FnOnce() -> Option<Held>,
    ) {
        match access {
            Access::Folder => {
                if answer == Answer::Done
                    && let Some(opened) = opened()
                    && let Some(folder) = self.named(dir, name)
                {
                    // A reused descriptor is another folder now.
                    self.seen.remove(&opened);
                    self.dirs.insert(opened, folder);
                }
            }
            // Announced before the call; which file it is, after.
            Access::Write => {
                if answer == Answer::Done {
                    self.remember_written(dir, name);
                }
            }
            // The first time, with the file's fingerprint (one `stat`, beneath
            // its folder): a save before the watcher has it is still seen.
            Access::Read if answer != Answer::Refused => {
                let Some(file) = self.named(dir, name) else {
                    return;
                };
                let path = file.path();
                if self.noted.contains(&path) || !self.room_for(path.as_os_str().len()) {
                    return;
                }
                self.seen.entry(dir).or_default().insert(name.into());
                self.noted.insert(path.clone());
                let seen = file.fingerprint();
                self.read.push(ReadFile {
                    path,
                    beneath: file,
                    seen,
                    own: false,
                });
            }
            Access::Read => {}
        }
    }

    /// The directory a component's `descriptor` resource `rep` stands for,
    /// its folder open as `handle`: the one an `open-at` of this run gave it
    /// (recorded by [`Self::hold`] and [`Self::note`]), or a granted folder
    /// itself (the same device and inode, read once per resource). `None`
    /// for any other folder: nothing under it is noted or announced.
    pub(super) fn held(&mut self, rep: u32, handle: &Arc<File>) -> Option<Held> {
        let held = Held::Handle(rep);
        if let Some(known) = self.handles.get(&rep)
            && std::ptr::eq(known.as_ptr(), Arc::as_ptr(handle))
        {
            return self.dirs.contains_key(&held).then_some(held);
        }
        self.hold(rep, handle);
        let id = identity(handle)?;
        let roots = self.roots.get_or_insert_with(|| {
            (self.preopens.iter())
                .filter_map(|dir| Some((dir.identity()?, dir.clone())))
                .collect()
        });
        let root = roots.iter().find(|(root, _)| *root == id)?.1.clone();
        self.dirs.insert(held, root);
        Some(held)
    }

    /// Records that resource `rep` now is the folder open as `handle`, which
    /// an `open-at` just returned: what `rep` stood for before is forgotten.
    /// [`Self::note`] (with [`Access::Folder`]) then says which folder it is.
    pub(super) fn hold(&mut self, rep: u32, handle: &Arc<File>) -> Held {
        let held = Held::Handle(rep);
        self.dirs.remove(&held);
        self.seen.remove(&held);
        self.handles.insert(rep, Arc::downgrade(handle));
        held
    }

    /// `name` (a path as the guest wrote it) under directory `dir`; `None`
    /// for a directory that is not a known folder, or a name that is not
    /// UTF-8, absolute or climbs out.
    fn named(&self, dir: Held, name: &[u8]) -> Option<Beneath> {
        self.dirs
            .get(&dir)?
            .join(Path::new(std::str::from_utf8(name).ok()?))
    }
}

/// The device and inode of an open folder.
#[cfg(unix)]
fn identity(handle: &File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = handle.metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Elsewhere folders have no identity we can read: none is a granted one.
#[cfg(not(unix))]
fn identity(_handle: &File) -> Option<(u64, u64)> {
    None
}

/// The longest path noted: the system opens no longer one (PATH_MAX), and a
/// hostile guest's 200 MB name is not copied.
const LONGEST_PATH: i32 = 4096;

/// The bytes of the guest string at `ptr..ptr + len`.
pub(super) fn guest_bytes(memory: &[u8], ptr: i32, len: i32) -> Option<&[u8]> {
    if len > LONGEST_PATH {
        return None;
    }
    let start = usize::try_from(ptr).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    memory.get(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's file access over a real folder, and what it announces.
    fn access() -> (
        tempfile::TempDir,
        FileAccess,
        crossbeam_channel::Receiver<PathBuf>,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (announce, announced) = crossbeam_channel::unbounded();
        let preopen = Preopen {
            host: dir.path().to_path_buf(),
            guest: ".".to_owned(),
            read_only: false,
        };
        (dir, FileAccess::new(&[preopen], announce), announced)
    }

    fn open(files: &mut FileAccess, name: &[u8], access: Access, errno: i32) {
        let len = i32::try_from(name.len()).expect("short name");
        if let Some((_, name)) = files.before_call(name, 3, 0, len, access) {
            let answer = Answer::of_errno(errno);
            files.note(Held::Fd(3), &name, access, answer, || Some(Held::Fd(9)));
        }
    }

    #[test]
    fn reads_are_noted_once_and_written_files_are_the_guests_own() {
        let (dir, mut files, announced) = access();
        let project = dir.path();
        open(&mut files, b"helper.py", Access::Read, ERRNO_SUCCESS);
        open(&mut files, b"later.py", Access::Read, ERRNO_NOENT);
        open(&mut files, b"./helper.py", Access::Read, ERRNO_SUCCESS);
        open(&mut files, b"helper.py", Access::Read, ERRNO_SUCCESS);
        open(&mut files, b"denied.py", Access::Read, 2);
        open(&mut files, b"out.txt", Access::Read, ERRNO_SUCCESS);
        open(&mut files, b"out.txt", Access::Write, ERRNO_SUCCESS);
        open(&mut files, b"out.txt", Access::Write, ERRNO_SUCCESS);
        open(&mut files, b"../up.py", Access::Read, ERRNO_SUCCESS);
        open(&mut files, b"lib", Access::Folder, ERRNO_SUCCESS);
        files.note(Held::Fd(9), b"inner.py", Access::Read, Answer::Done, || {
            None
        });
        let elsewhere = b"elsewhere.py";
        files.note(Held::Fd(4), elsewhere, Access::Read, Answer::Done, || None);

        let read: Vec<(PathBuf, bool)> = (files.read().into_iter())
            .map(|file| {
                (
                    file.path.strip_prefix(project).expect("inside").to_owned(),
                    file.own,
                )
            })
            .collect();
        let expected = [
            ("helper.py", false),
            ("later.py", false),
            ("out.txt", true),
            ("lib/inner.py", false),
        ];
        let expected: Vec<(PathBuf, bool)> = (expected.iter())
            .map(|(name, own)| (PathBuf::from(name), *own))
            .collect();
        assert_eq!(
            read, expected,
            "./helper.py is another name for the same file"
        );
        let written: Vec<PathBuf> = announced.try_iter().collect();
        assert_eq!(written, vec![project.join("out.txt")]);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_the_guest_moved_over_one_it_read_is_its_own() {
        let (dir, mut files, _announced) = access();
        let project = dir.path();
        std::fs::write(project.join("state"), "1").expect("write");
        std::fs::write(project.join("other"), "x").expect("write");
        std::os::unix::fs::symlink("state", project.join("alias")).expect("symlink");
        open(&mut files, b"state", Access::Read, ERRNO_SUCCESS);
        open(&mut files, b"alias", Access::Read, ERRNO_SUCCESS);
        open(&mut files, b"other", Access::Read, ERRNO_SUCCESS);
        open(&mut files, b"state.new", Access::Write, ERRNO_SUCCESS);
        std::fs::write(project.join("state.new"), "2").expect("write");
        files.note(
            Held::Fd(3),
            b"state.new",
            Access::Write,
            Answer::Done,
            || None,
        );
        files.remember_written(Held::Fd(3), b"state.new");
        std::fs::rename(project.join("state.new"), project.join("state")).expect("rename");
        std::fs::write(project.join("other"), "a save of the user's").expect("write");
        let own: Vec<(String, bool)> = files
            .read()
            .into_iter()
            .map(|file| (file.path.display().to_string(), file.own))
            .collect();
        let named = |name: &str| project.join(name).display().to_string();
        assert_eq!(
            own,
            [
                (named("state"), true),
                (named("alias"), true),
                (named("other"), false)
            ]
        );
    }

    #[test]
    fn a_components_folder_is_the_one_its_handle_stands_for() {
        let (dir, mut files, announced) = access();
        let project = dir.path();
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(project.join("sub")).expect("mkdir");
        let handle = |path: &Path| Arc::new(File::open(path).expect("open folder"));
        // A preopen, as get-directories gives it: the granted folder by its inode.
        let root = handle(project);
        assert_eq!(files.held(1, &root), Some(Held::Handle(1)));
        files.announce_write(Held::Handle(1), b"out.txt");
        // A folder it opened under it: the name the open-at gave.
        let sub = handle(&project.join("sub"));
        let opened = files.hold(2, &sub);
        files.note(
            Held::Handle(1),
            b"sub",
            Access::Folder,
            Answer::Done,
            || Some(opened),
        );
        assert_eq!(files.held(2, &sub), Some(Held::Handle(2)));
        files.announce_write(Held::Handle(2), b"inner");
        // The same resource now another folder, not one it opened: unknown,
        // and nothing under it is announced.
        let elsewhere = handle(outside.path());
        assert_eq!(files.held(2, &elsewhere), None);
        files.announce_write(Held::Handle(2), b"x");
        assert_eq!(files.held(3, &elsewhere), None);
        // The same folder under another resource is the granted folder's.
        assert_eq!(files.held(4, &handle(project)), Some(Held::Handle(4)));
        let written: Vec<PathBuf> = announced.try_iter().collect();
        assert_eq!(
            written,
            [project.join("out.txt"), project.join("sub/inner")]
        );
    }

    #[test]
    fn what_a_run_notes_is_bounded() {
        let (dir, mut files, announced) = access();
        for n in 0..NOTED_MAX + 10 {
            open(
                &mut files,
                format!("missing-{n}").as_bytes(),
                Access::Read,
                ERRNO_NOENT,
            );
        }
        assert_eq!(files.read().len(), NOTED_MAX);
        assert!(
            files
                .overflow()
                .is_some_and(|words| words.contains("not watched"))
        );
        open(&mut files, b"out.txt", Access::Write, ERRNO_SUCCESS);
        // Past the bound a write announces its whole folder, once.
        open(&mut files, b"out2.txt", Access::Write, ERRNO_SUCCESS);
        let written: Vec<PathBuf> = announced.try_iter().collect();
        assert_eq!(written, [dir.path().to_path_buf()]);

        let (_dir, mut files, _) = access();
        let long = "d/".repeat(2000) + "x";
        for n in 0..2000 {
            let name = format!("{long}{n}");
            open(&mut files, name.as_bytes(), Access::Read, ERRNO_NOENT);
        }
        let bytes: usize = files.read().iter().map(|f| f.path.as_os_str().len()).sum();
        assert!(bytes <= NOTED_BYTES_MAX && files.overflow().is_some());
    }
}
