//! Module names to files, confined to the root: `N` -> `N.wat`, else `N.wasm`;
//! `lib/math` -> `lib/math.wat`. Nothing outside the root is ever read.

use std::path::{Path, PathBuf};

/// Import module names served by the host, never by a file.
pub const HOST_NAMESPACES: &[&str] = &["wasi_snapshot_preview1", "wasi_unstable", "live"];

/// True when `module` names a host namespace rather than another module.
pub fn is_host_namespace(module: &str) -> bool {
    HOST_NAMESPACES.contains(&module)
}

/// How messages name a file: relative to the root when it is inside it.
pub fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Why a module name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadName {
    /// The empty string.
    Empty,
    /// Contains a NUL byte.
    Nul,
    /// Starts at the file-system root.
    Absolute,
    /// Has a `..`, `.` or empty path component.
    NotPlain,
    /// Resolves, through a symlink, to a file outside the root.
    OutsideRoot(PathBuf),
}

impl std::fmt::Display for BadName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadName::Empty => write!(f, "the name is empty"),
            BadName::Nul => write!(f, "the name contains a NUL byte"),
            BadName::Absolute => write!(f, "absolute paths are not allowed"),
            BadName::NotPlain => write!(
                f,
                "names are relative paths made of plain components (no `..`, `.` or `//`)"
            ),
            BadName::OutsideRoot(target) => write!(
                f,
                "it resolves to {}, outside the root (a symlink?)",
                target.display()
            ),
        }
    }
}

/// Where a module name may live: `[root/N.wat, root/N.wasm]`, after checking the
/// name's shape.
pub fn candidates(root: &Path, name: &str) -> Result<[PathBuf; 2], BadName> {
    if name.is_empty() {
        return Err(BadName::Empty);
    }
    if name.contains('\0') {
        return Err(BadName::Nul);
    }
    if name.starts_with('/') || name.starts_with('\\') || Path::new(name).is_absolute() {
        return Err(BadName::Absolute);
    }
    let plain =
        |part: &str| !part.is_empty() && part != "." && part != ".." && !part.contains('\\');
    if !name.split('/').all(plain) {
        return Err(BadName::NotPlain);
    }
    Ok([
        root.join(format!("{name}.wat")),
        root.join(format!("{name}.wasm")),
    ])
}

/// The first candidate that exists, checked to stay inside `root` (canonical)
/// once symlinks are followed; `Ok(None)` when none exists.
pub fn existing(root: &Path, candidates: &[PathBuf]) -> Result<Option<PathBuf>, BadName> {
    let Some(found) = candidates.iter().find(|path| path.exists()) else {
        return Ok(None);
    };
    let real = found.canonicalize().unwrap_or_else(|_| found.clone());
    if !real.starts_with(root) {
        return Err(BadName::OutsideRoot(real));
    }
    Ok(Some(found.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_map_to_wat_then_wasm() {
        let [wat, wasm] = candidates(Path::new("/r"), "lib/math").expect("plain");
        assert_eq!(wat, Path::new("/r/lib/math.wat"));
        assert_eq!(wasm, Path::new("/r/lib/math.wasm"));
    }

    #[test]
    fn names_that_leave_the_root_are_refused() {
        let root = Path::new("/r");
        assert_eq!(candidates(root, ""), Err(BadName::Empty));
        assert_eq!(candidates(root, "a\0b"), Err(BadName::Nul));
        assert_eq!(candidates(root, "/etc/passwd"), Err(BadName::Absolute));
        for name in ["..", "../x", "lib/../../x", "./x", "a//b", "a/", "a\\..\\b"] {
            assert_eq!(candidates(root, name), Err(BadName::NotPlain), "{name}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let outside = tempfile::tempdir().expect("tempdir");
        let root_dir = tempfile::tempdir().expect("tempdir");
        let root = root_dir.path().canonicalize().expect("canonical");
        std::fs::write(outside.path().join("secret.wat"), "(module)").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret.wat"), root.join("link.wat"))
            .expect("symlink");
        std::fs::write(root.join("inside.wasm"), "").expect("write");

        let link = candidates(&root, "link").expect("shape ok");
        assert!(matches!(
            existing(&root, &link),
            Err(BadName::OutsideRoot(_))
        ));
        let inside = candidates(&root, "inside").expect("shape ok");
        assert_eq!(existing(&root, &inside), Ok(Some(root.join("inside.wasm"))));
        let missing = candidates(&root, "missing").expect("shape ok");
        assert_eq!(existing(&root, &missing), Ok(None));
    }
}
