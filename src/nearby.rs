//! A bounded look at the files under a folder (the one live-wasm was started
//! in), for the hints of error messages: a module kept beside the sources
//! while the root is the build's output folder, the `.wasm` a build wrote
//! under another name than the entry's.
//!
//! Only names and file types are read, never a file's content; no symlink is
//! followed and no hidden folder nor `node_modules/` is entered. The look is
//! breadth first, so what is near comes first, and bounded in entries and
//! depth: a hint costs a few milliseconds at most, however big the folder.
//! It is an error path's: callers look once per failure (a run looks once,
//! whatever its guest asks for), and what is found goes to the user, never
//! to a guest.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// The most folder entries one look reads.
const ENTRIES_MAX: usize = 5_000;
/// The deepest a look goes below its folder.
const DEPTH_MAX: usize = 6;
/// The most files one look returns.
const FOUND_MAX: usize = 256;

/// Folders never entered besides hidden ones: thousands of files, none the
/// user's.
const SKIPPED: &[&str] = &["node_modules"];

/// The files under `dir` (absolute paths) that `wanted` takes, nearest first,
/// in name order within a folder.
pub(crate) fn files(dir: &Path, wanted: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut entries = 0;
    let mut folders = VecDeque::from([(dir.to_path_buf(), 0)]);
    while let Some((folder, depth)) = folders.pop_front() {
        let Ok(listing) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut here = Vec::new();
        for entry in listing.flatten() {
            entries += 1;
            if entries > ENTRIES_MAX {
                break;
            }
            // The entry's own type: a symlink is neither a file nor a folder.
            if let Ok(kind) = entry.file_type() {
                here.push((entry.file_name(), kind));
            }
        }
        here.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, kind) in here {
            let path = folder.join(&name);
            let hidden = name.to_string_lossy().starts_with('.');
            if kind.is_dir() && !hidden && depth < DEPTH_MAX {
                if !SKIPPED.iter().any(|skipped| name == *skipped) {
                    folders.push_back((path, depth + 1));
                }
            } else if kind.is_file() && wanted(&path) {
                found.push(path);
                if found.len() >= FOUND_MAX {
                    return found;
                }
            }
        }
        if entries > ENTRIES_MAX {
            break;
        }
    }
    found
}

/// `path` for a message, relative to `cwd` when inside it (`.` for `cwd`
/// itself), else in full.
pub(crate) fn shown(cwd: &Path, path: &Path) -> String {
    match path.strip_prefix(cwd) {
        Ok(inside) if inside.as_os_str().is_empty() => ".".to_owned(),
        Ok(inside) => inside.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

// Symlinks, as the test makes them, are Unix's.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn nearest_first_no_hidden_folder_no_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for folder in ["a/b", ".git", "node_modules/x", "z"] {
            std::fs::create_dir_all(root.join(folder)).expect("mkdir");
        }
        for file in [
            "a/b/m.wat",
            "z/m.wat",
            "m.wasm",
            ".git/m.wat",
            "node_modules/x/m.wat",
            "a/other.txt",
        ] {
            std::fs::write(root.join(file), "").expect("write");
        }
        std::os::unix::fs::symlink(root.join("z"), root.join("link")).expect("symlink");
        let modules = |path: &Path| path.extension().is_some_and(|ext| ext != "txt");
        let found: Vec<String> = files(root, modules)
            .iter()
            .map(|path| shown(root, path))
            .collect();
        assert_eq!(found, ["m.wasm", "z/m.wat", "a/b/m.wat"]);
        assert_eq!(shown(root, root), ".");
        assert_eq!(shown(Path::new("/elsewhere"), Path::new("/p/q")), "/p/q");
    }
}
