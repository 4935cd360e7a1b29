//! Which files of a project are sources, for `--build` without `--watch`: the
//! current folder, minus what `.gitignore` and `.ignore` files exclude (at any
//! depth, as git reads them, through the `ignore` crate that ripgrep and
//! watchexec use) and the usual build folders.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ignore::gitignore::Gitignore;

/// Folders that hold build outputs and tools' state, never sources.
const BUILD_FOLDERS: &[&str] = &["target", "node_modules", "zig-cache", ".zig-cache", ".git"];

/// The ignore rules of a project folder.
pub struct Sources {
    root: PathBuf,
    /// One matcher per ignore file, deepest folder first.
    rules: Vec<Gitignore>,
}

impl Sources {
    /// Reads the ignore files under `root` (absolute).
    pub fn new(root: &Path) -> Sources {
        let mut rules: Vec<Gitignore> = walk(root)
            .filter(|path| {
                path.file_name()
                    .is_some_and(|name| name == ".gitignore" || name == ".ignore")
            })
            .map(|file| Gitignore::new(file).0)
            .collect();
        rules.sort_by_key(|rules| std::cmp::Reverse(rules.path().components().count()));
        Sources {
            root: root.to_path_buf(),
            rules,
        }
    }

    /// True when `path` (absolute, a file) is a source: under the root, in no
    /// build folder, and not ignored.
    pub fn admits(&self, path: &Path) -> bool {
        let Ok(inside) = path.strip_prefix(&self.root) else {
            return false;
        };
        let in_build_folder = inside.components().any(|part| {
            BUILD_FOLDERS
                .iter()
                .any(|folder| part.as_os_str() == *folder)
        });
        if in_build_folder {
            return false;
        }
        for rules in &self.rules {
            if !path.starts_with(rules.path()) {
                continue;
            }
            let verdict = rules.matched_path_or_any_parents(path, false);
            if verdict.is_ignore() {
                return false;
            }
            if verdict.is_whitelist() {
                return true;
            }
        }
        true
    }

    /// The source files there are now.
    pub fn files(&self) -> HashSet<PathBuf> {
        walk(&self.root).filter(|path| self.admits(path)).collect()
    }
}

/// The files under `root`, not entering build folders, hidden ones included
/// (ignore files are hidden).
pub(super) fn walk(root: &Path) -> impl Iterator<Item = PathBuf> {
    ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .filter_entry(|entry| {
            !BUILD_FOLDERS
                .iter()
                .any(|folder| entry.file_name() == *folder)
        })
        .build()
        .flatten()
        .filter(|entry| entry.file_type().is_some_and(|kind| kind.is_file()))
        .map(ignore::DirEntry::into_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_files_and_build_folders_are_honoured_at_any_depth() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for folder in ["src", "target/debug", "node_modules/x", "gen", "src/deep"] {
            std::fs::create_dir_all(root.join(folder)).expect("mkdir");
        }
        std::fs::write(root.join(".gitignore"), "*.o\ngen/\n!keep.o\n").expect("write");
        std::fs::write(root.join("src/.ignore"), "scratch.c\n").expect("write");
        for file in [
            "main.c",
            "main.o",
            "keep.o",
            "gen/x.c",
            "src/a.c",
            "src/scratch.c",
            "src/deep/b.c",
            "target/debug/m.wasm",
            "node_modules/x/i.js",
        ] {
            std::fs::write(root.join(file), "").expect("write");
        }
        let sources = Sources::new(root);
        let mut found: Vec<String> = sources
            .files()
            .iter()
            .map(|path| {
                path.strip_prefix(root)
                    .expect("inside")
                    .display()
                    .to_string()
            })
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                ".gitignore",
                "keep.o",
                "main.c",
                "src/.ignore",
                "src/a.c",
                "src/deep/b.c"
            ]
        );
        assert!(
            sources.admits(&root.join("src/new.c")),
            "a file created later"
        );
        assert!(!sources.admits(&root.join("src/scratch.c")));
        assert!(!sources.admits(Path::new("/elsewhere/x.c")));
    }
}
