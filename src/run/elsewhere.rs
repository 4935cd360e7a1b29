//! Where a module that is not in the root sits instead: the hint of "module
//! not found". A program built into `target/` that uses `testmod` finds no
//! `testmod.wat` beside the built `.wasm`; the file is beside the sources,
//! and `--root` is what makes it resolve there.

use std::path::{Path, PathBuf};

use crate::nearby;

/// The module files (`.wat`, `.wasm`) under `cwd`, nearest first: looked at
/// once per run, at its first module not found.
pub(super) fn module_files(cwd: &Path) -> Vec<PathBuf> {
    nearby::files(cwd, |path| {
        path.extension()
            .is_some_and(|ext| ext == "wat" || ext == "wasm")
    })
}

/// The root as the user names it (`target/wasm32-wasip1/debug/`), when it
/// is not the current folder: where module names were looked for.
pub(super) fn place(cwd: &Path, root: &Path) -> Option<String> {
    (root != cwd).then(|| format!("{}/", nearby::shown(cwd, root).trim_end_matches('/')))
}

/// What to do when module `name` is not in `root` but one of `files` (under
/// `cwd`, nearest first) would be it: the one in the folder closest to the
/// root (`proj/testmod.wat` for `proj/target/debug/`, not `other/testmod.wat`),
/// named from `cwd`.
pub(super) fn hint(name: &str, root: &Path, cwd: &Path, files: &[PathBuf]) -> Option<String> {
    let depth = Path::new(name).components().count();
    let shared = |dir: &Path| {
        dir.components()
            .zip(root.components())
            .take_while(|(a, b)| a == b)
            .count()
    };
    let (file, dir) = files
        .iter()
        .filter_map(|file| {
            let wanted = ["wat", "wasm"]
                .into_iter()
                .any(|ext| file.ends_with(format!("{name}.{ext}")));
            let dir = file.ancestors().nth(depth).filter(|_| wanted)?;
            (dir != root).then_some((file, dir))
        })
        // The first of the closest: `max_by_key` would keep the last.
        .min_by_key(|(_, dir)| std::cmp::Reverse(shared(dir)))?;
    let shown = nearby::shown(cwd, file);
    Some(match file.strip_prefix(root) {
        // Beneath the root: another name reaches it.
        Ok(inside) => {
            let other = inside.with_extension("");
            format!("{shown} exists: use it as `{}`", other.display())
        }
        Err(_) => format!(
            "{shown} exists: start with --root {} to use it",
            nearby::shown(cwd, dir)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_beside_the_sources_suggests_the_root_that_finds_it() {
        let cwd = Path::new("/p");
        let root = Path::new("/p/target/wasm32-wasip1/debug");
        let files = [
            PathBuf::from("/p/testmod.wat"),
            PathBuf::from("/p/a/testmod.wat"),
            PathBuf::from("/p/lib/math.wasm"),
            PathBuf::from("/p/target/wasm32-wasip1/debug/sub/deep.wat"),
        ];
        let hint = |name| super::hint(name, root, cwd, &files);
        assert_eq!(
            hint("testmod").as_deref(),
            Some("testmod.wat exists: start with --root . to use it")
        );
        assert_eq!(
            hint("lib/math").as_deref(),
            Some("lib/math.wasm exists: start with --root . to use it")
        );
        assert_eq!(
            hint("deep").as_deref(),
            Some("target/wasm32-wasip1/debug/sub/deep.wat exists: use it as `sub/deep`")
        );
        assert_eq!(
            hint("math").as_deref(),
            Some("lib/math.wasm exists: start with --root lib to use it")
        );
        assert_eq!(hint("nothere"), None);
        assert_eq!(
            place(cwd, root).as_deref(),
            Some("target/wasm32-wasip1/debug/")
        );
        assert_eq!(place(cwd, cwd), None);
        // The closest to the root, though further from the current folder.
        let root = Path::new("/p/a/target/debug");
        assert_eq!(
            super::hint("testmod", root, cwd, &files).as_deref(),
            Some("a/testmod.wat exists: start with --root a to use it")
        );
        assert_eq!(place(cwd, Path::new("/q")).as_deref(), Some("/q/"));
    }
}
