//! The guest examples as the language tests and the languages bench use them
//! (the bench includes this file): a copy of one in a folder of its own, and
//! the PATH that finds their compilers.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `guest-examples/` in this repository.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guest-examples")
}

/// Our PATH with `.toolchains/venv/bin` (where `.ci/install-guests` puts Zig
/// and Go) first.
pub fn toolchain_path() -> OsString {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".toolchains/venv/bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let paths = std::iter::once(venv).chain(std::env::split_paths(&path));
    std::env::join_paths(paths).unwrap_or(path)
}

/// Fails unless example `folder` has a README giving its start command.
pub fn assert_readme_gives_start_command(folder: &str) {
    let path = examples().join(folder).join("README.md");
    let readme =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    assert!(
        readme.contains("live-wasm --build ./build "),
        "{} gives no start command",
        path.display()
    );
}

/// Copies the sources of example `folder` into `to` (not what its builds left:
/// `*.wasm`, `target/`), sharing the example's `node_modules/` by a symlink.
pub fn copy_example(folder: &str, to: &Path) {
    let from = examples().join(folder);
    copy_sources(&from, to);
    let modules = from.join("node_modules");
    if modules.is_dir() {
        std::os::unix::fs::symlink(modules, to.join("node_modules")).expect("symlink");
    }
}

fn copy_sources(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read example") {
        let entry = entry.expect("example entry");
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "target" || name == "node_modules" || name.ends_with(".wasm") {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&*name));
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir(&target).expect("mkdir");
            copy_sources(&source, &target);
        } else {
            std::fs::copy(&source, &target).expect("copy");
        }
    }
}
