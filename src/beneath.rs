//! Files named by a guest, looked at only beneath the folder they were named in.
//!
//! What the host does on a guest's behalf (stat a file it read, hash it, find
//! the folder to watch for it) never resolves the guest's path text on the
//! host: a guest with a writable folder can turn any name in it into a symlink
//! to `/`, between its own call and ours. Every look goes through a handle on
//! the granted folder (`openat2` with `RESOLVE_BENEATH` where the kernel has
//! it, cap-std's own checks elsewhere): a symlink or `..` that leads out is
//! refused, as if the file were missing.

use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::source::{ContentHash, Fingerprint};

/// A file a run read through WASI, or looked for: the watcher watches it too.
#[derive(Debug, Clone)]
pub(crate) struct ReadFile {
    /// The file (absolute): the watcher's key, never opened by this text.
    pub path: PathBuf,
    /// Where the host may look at it.
    pub beneath: Beneath,
    /// Its fingerprint when the run first opened it; `None` if it did not exist.
    pub seen: Option<Fingerprint>,
    /// The guest itself wrote what the name leads to now (renamed a file over
    /// it, say): no save of the user's, whatever changed.
    pub own: bool,
}

/// A folder the guest was granted, open: everything under it is looked at
/// through this handle.
#[derive(Debug)]
pub(crate) struct Folder {
    path: PathBuf,
    dir: cap_std::fs::Dir,
}

impl Folder {
    /// Opens the folder at `path` (absolute).
    pub(crate) fn open(path: &Path) -> io::Result<Arc<Folder>> {
        let dir = cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(Arc::new(Folder {
            path: path.to_path_buf(),
            dir,
        }))
    }
}

/// A file named relative to a granted folder: where the host may look for it.
#[derive(Debug, Clone)]
pub(crate) struct Beneath {
    folder: Arc<Folder>,
    /// Plain names only (no `.`, `..` or root): see [`Beneath::new`].
    relative: PathBuf,
}

impl Beneath {
    /// `relative` under `folder`, its `.` and `..` taken by their names; `None`
    /// when it is absolute or climbs out (WASI refuses those anyway).
    pub(crate) fn new(folder: Arc<Folder>, relative: &Path) -> Option<Beneath> {
        let mut plain = PathBuf::new();
        for component in relative.components() {
            match component {
                Component::Normal(name) => plain.push(name),
                Component::CurDir => {}
                Component::ParentDir => {
                    if !plain.pop() {
                        return None;
                    }
                }
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        Some(Beneath {
            folder,
            relative: plain,
        })
    }

    /// The same folder, `name` under this path.
    pub(crate) fn join(&self, name: &Path) -> Option<Beneath> {
        Beneath::new(Arc::clone(&self.folder), &self.relative.join(name))
    }

    /// Its host path, for messages and as the watcher's key: never opened by
    /// that text.
    pub(crate) fn path(&self) -> PathBuf {
        match self.relative.as_os_str().is_empty() {
            // `join("")` would end it with a separator: another key for the same folder.
            true => self.folder.path.clone(),
            false => self.folder.path.join(&self.relative),
        }
    }

    /// The file, opened for reading beneath the folder: without blocking on a
    /// FIFO, and refused when a symlink on the way leads out.
    pub(crate) fn open(&self) -> io::Result<File> {
        let options = crate::source::reading_beneath();
        let relative = self.relative_or_dot();
        Ok(self.folder.dir.open_with(relative, &options)?.into_std())
    }

    /// What `stat` says of it, beneath the folder; `None` when it is missing,
    /// out of reach, or leads out.
    pub(crate) fn fingerprint(&self) -> Option<Fingerprint> {
        Fingerprint::of_metadata(&self.open().ok()?.metadata().ok()?)
    }

    /// Its device and inode, beneath the folder: which file a name stands for
    /// now, whatever names lead to it.
    #[cfg(unix)]
    pub(crate) fn identity(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let meta = self.open().ok()?.metadata().ok()?;
        Some((meta.dev(), meta.ino()))
    }

    /// Elsewhere files have no identity we can read: none is the guest's own.
    #[cfg(not(unix))]
    pub(crate) fn identity(&self) -> Option<(u64, u64)> {
        None
    }

    /// The hash of its content, when it is a regular file beneath the folder.
    pub(crate) fn hash(&self) -> Option<ContentHash> {
        crate::source::hash_file(crate::source::regular(self.open().ok()?).ok()?)
    }

    /// True when it is a folder beneath the folder.
    pub(crate) fn is_dir(&self) -> bool {
        self.open()
            .and_then(|file| file.metadata())
            .is_ok_and(|meta| meta.is_dir())
    }

    /// The deepest folder on its way that exists beneath the granted folder
    /// (itself included), looked at one name at a time from the top: a name
    /// made of thousands of missing folders costs one look.
    pub(crate) fn nearest_folder(&self) -> Beneath {
        let mut reached = PathBuf::new();
        let mut dir = match self.folder.dir.try_clone() {
            Ok(dir) => dir,
            Err(_) => return self.with(reached),
        };
        for name in self.relative.iter() {
            match dir.open_dir(name) {
                Ok(inner) => {
                    dir = inner;
                    reached.push(name);
                }
                Err(_) => break,
            }
        }
        self.with(reached)
    }

    /// The granted folder's own path.
    pub(crate) fn granted_folder(&self) -> PathBuf {
        self.folder.path.clone()
    }

    /// The folder that holds it (the granted folder for a file right in it).
    pub(crate) fn parent(&self) -> Beneath {
        self.with(
            self.relative
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        )
    }

    fn with(&self, relative: PathBuf) -> Beneath {
        Beneath {
            folder: Arc::clone(&self.folder),
            relative,
        }
    }

    fn relative_or_dot(&self) -> &Path {
        if self.relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &self.relative
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_beneath_their_folder_or_not_at_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = Folder::open(dir.path()).expect("open");
        let at = |name: &str| Beneath::new(Arc::clone(&folder), Path::new(name)).map(|b| b.path());
        assert_eq!(
            at("lib/./helper.py"),
            Some(dir.path().join("lib/helper.py"))
        );
        assert_eq!(at("lib/../main.py"), Some(dir.path().join("main.py")));
        assert_eq!(at("."), Some(dir.path().to_path_buf()));
        assert_eq!(at("../etc/passwd"), None);
        assert_eq!(at("lib/../../x"), None);
        assert_eq!(at("/etc/passwd"), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_is_never_followed() {
        let base = tempfile::tempdir().expect("tempdir");
        let granted = base.path().join("d");
        let secret = base.path().join("secret");
        std::fs::create_dir_all(&granted).expect("mkdir d");
        std::fs::create_dir_all(secret.join("inner")).expect("mkdir secret");
        std::fs::write(secret.join("present"), "outside").expect("write");
        std::fs::write(granted.join("inside"), "inside").expect("write");
        std::os::unix::fs::symlink("../secret", granted.join("a")).expect("symlink");
        std::os::unix::fs::symlink("inside", granted.join("alias")).expect("symlink");
        let folder = Folder::open(&granted).expect("open");
        let named = |name: &str| Beneath::new(Arc::clone(&folder), Path::new(name)).expect("plain");

        let out = named("a/present");
        assert!(
            std::fs::read(out.path()).is_ok(),
            "by its text it leads out"
        );
        assert!(out.open().is_err() && out.hash().is_none() && out.fingerprint().is_none());
        assert!(!named("a").is_dir() && !named("a/inner").is_dir());
        assert_eq!(named("a/inner/x").nearest_folder().path(), granted);

        let alias = named("alias");
        assert_eq!(
            alias.hash(),
            named("inside").hash(),
            "a symlink inside is followed"
        );
        assert_eq!(alias.identity(), named("inside").identity());
        assert!(alias.hash().is_some());
    }

    #[test]
    fn the_nearest_folder_is_found_from_the_top() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
        let folder = Folder::open(dir.path()).expect("open");
        let deep = "a/b/".to_owned() + &["missing"; 1000].join("/") + "/file";
        let named = Beneath::new(folder, Path::new(&deep)).expect("plain");
        assert_eq!(named.nearest_folder().path(), dir.path().join("a/b"));
        assert_eq!(
            named.parent().nearest_folder().path(),
            dir.path().join("a/b")
        );
    }
}
