//! Which files of a project are sources, for `--build` without `--watch`: the
//! current folder, minus what `.gitignore` and `.ignore` files exclude (at any
//! depth, as git reads them, through the `ignore` crate's matcher that ripgrep
//! and watchexec use) and the usual build folders.
//!
//! A folder that is ignored, or a build folder, is never entered: not walked
//! at a build's start, not watched (a `node_modules/` of 3,000 folders would
//! otherwise cost 3,000 watches and a walk at every save), and its own ignore
//! files are not read, as git does not read them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ignore::gitignore::Gitignore;

/// Folders that hold build outputs and tools' state, never sources.
const BUILD_FOLDERS: &[&str] = &["target", "node_modules", "zig-cache", ".zig-cache", ".git"];
/// The ignore files read, in each folder entered.
const IGNORE_FILES: &[&str] = &[".gitignore", ".ignore"];
/// Files builds make, never sources wherever they sit: nobody edits a `.wasm`
/// by hand, and one written beside the sources (the entry under a name
/// mistyped on the command line, an intermediate module left by an earlier
/// session) would otherwise be a source changed during the first build, and
/// build again. `--watch FILE` makes one a source.
const OUTPUT_EXTENSIONS: &[&str] = &["wasm"];

/// The ignore rules of a project folder.
pub(super) struct Sources {
    root: PathBuf,
    /// One matcher per ignore file, deepest folder first.
    rules: Vec<Gitignore>,
    /// The ignore files read, so a folder surveyed again adds no rules twice.
    read: HashSet<PathBuf>,
}

/// What a look at a folder of the project found.
#[derive(Debug, Default)]
pub(super) struct Survey {
    /// The folders entered (the one looked at first): those to watch.
    pub folders: Vec<PathBuf>,
    /// The source files in them.
    pub files: Vec<PathBuf>,
}

impl Sources {
    /// The rules of the project at `root` (absolute), and what is there: its
    /// ignore files are read top-down, each before the folder's entries are
    /// judged.
    pub(super) fn new(root: &Path) -> (Sources, Survey) {
        let mut sources = Sources {
            root: root.to_path_buf(),
            rules: Vec::new(),
            read: HashSet::new(),
        };
        let survey = sources.survey(root);
        (sources, survey)
    }

    /// The folders and source files under `dir` (itself included), entering
    /// no ignored folder nor build folder, and following no symlink; ignore
    /// files met on the way join the rules.
    pub(super) fn survey(&mut self, dir: &Path) -> Survey {
        let mut survey = Survey::default();
        let mut folders = vec![dir.to_path_buf()];
        while let Some(folder) = folders.pop() {
            self.learn(&folder);
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            survey.folders.push(folder);
            for entry in entries.flatten() {
                let path = entry.path();
                match entry.file_type() {
                    Ok(kind) if kind.is_dir() && self.admits_folder(&path) => folders.push(path),
                    Ok(kind) if kind.is_file() && self.admits(&path) => survey.files.push(path),
                    _ => {}
                }
            }
        }
        survey
    }

    /// Reads the ignore files of `folder` into the rules.
    fn learn(&mut self, folder: &Path) {
        for name in IGNORE_FILES {
            let file = folder.join(name);
            if file.is_file() && self.read.insert(file.clone()) {
                self.rules.push(Gitignore::new(&file).0);
            }
        }
        self.rules
            .sort_by_key(|rules| std::cmp::Reverse(rules.path().components().count()));
    }

    /// True when `path` (absolute, a file) is a source: under the root, in no
    /// build folder, and not ignored.
    pub(super) fn admits(&self, path: &Path) -> bool {
        self.judge(path, false)
    }

    /// True when `path` (absolute, a folder) may hold sources: under the root,
    /// in no build folder, and not ignored.
    pub(super) fn admits_folder(&self, path: &Path) -> bool {
        self.judge(path, true)
    }

    fn judge(&self, path: &Path, is_folder: bool) -> bool {
        let Ok(inside) = path.strip_prefix(&self.root) else {
            return false;
        };
        let in_build_folder = inside.components().any(|part| {
            BUILD_FOLDERS
                .iter()
                .any(|folder| part.as_os_str() == *folder)
        });
        let output = !is_folder
            && path
                .extension()
                .is_some_and(|ext| OUTPUT_EXTENSIONS.iter().any(|output| ext == *output));
        if in_build_folder || output {
            return false;
        }
        for rules in &self.rules {
            if !path.starts_with(rules.path()) {
                continue;
            }
            let verdict = rules.matched_path_or_any_parents(path, is_folder);
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
    pub(super) fn files(&mut self) -> HashSet<PathBuf> {
        let root = self.root.clone();
        self.survey(&root).files.into_iter().collect()
    }
}

/// The files under `root`, not entering build folders (a `--watch` folder
/// back after it was gone: every file is looked at).
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

    /// `paths`, named from `root`, sorted.
    fn names_under(root: &Path, paths: impl IntoIterator<Item = PathBuf>) -> Vec<String> {
        let mut names: Vec<String> = (paths.into_iter())
            .map(|path| {
                let inside = path.strip_prefix(root).expect("inside");
                inside.display().to_string()
            })
            .collect();
        names.sort();
        names
    }

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
            "main.wasm",
            "src/deep/lib.wasm",
        ] {
            std::fs::write(root.join(file), "").expect("write");
        }
        let (mut sources, _) = Sources::new(root);
        assert_eq!(
            names_under(root, sources.files()),
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
        // What builds make is never a source, even beside the sources.
        assert!(!sources.admits(&root.join("main.wasm")));
        assert!(sources.admits_folder(&root.join("src/lib.wasm")));
    }

    #[test]
    fn ignored_folders_are_never_entered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for folder in ["src/a", "gen/deep/er", "node_modules/m/n", "target/debug"] {
            std::fs::create_dir_all(root.join(folder)).expect("mkdir");
        }
        std::fs::write(root.join(".gitignore"), "gen/\n").expect("write");
        // Read by no one: the folder is ignored.
        std::fs::write(root.join("gen/.gitignore"), "!*\n").expect("write");
        std::fs::write(root.join("src/a/x.c"), "").expect("write");
        let (_, survey) = Sources::new(root);
        assert_eq!(names_under(root, survey.folders), ["", "src", "src/a"]);
        assert_eq!(survey.files.len(), 2, "{:?}", survey.files);
    }
}
