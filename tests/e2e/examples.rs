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

/// Every example, in `guest-examples/`, `guest-examples/components/` and
/// `guest-examples/http/`: each one's tests start it as the first line of its
/// README says ([`start_args`]: `languages::start_built`,
/// `interpreters::live_script`, `uses::the_2014_session_replays`,
/// [`the_hello_example_runs_as_its_readme_says`]).
pub const EXAMPLES: &[&str] = &[
    "assemblyscript",
    "c",
    "clock-and-dice",
    "components/python",
    "components/rust",
    "components/use-demo",
    "demo2014",
    "go",
    "hello",
    "http/python",
    "http/rust",
    "javascript",
    "python",
    "rust",
    "rust-calls-c",
    "zig",
];

/// The start command the first line of example `folder`'s README gives, as
/// an indented code line: `live-wasm` (run from the example's folder) or
/// `cargo run --` (from the repository's root), and what prepares the run
/// before it (`./fetch && `). Returns live-wasm's arguments.
pub fn start_args(folder: &str) -> Vec<String> {
    let path = examples().join(folder).join("README.md");
    let readme =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let first = readme.lines().next().unwrap_or_default();
    let command = first
        .strip_prefix("    ")
        .filter(|command| !command.starts_with(' '))
        .unwrap_or_else(|| {
            panic!(
                "{}: the first line is not the start command, as code: {first:?}",
                path.display()
            )
        });
    let run = command.rsplit(" && ").next().unwrap_or(command);
    let args = (run.strip_prefix("live-wasm "))
        .or_else(|| run.strip_prefix("cargo run -- "))
        .unwrap_or_else(|| {
            panic!(
                "{}: the start command runs neither live-wasm nor cargo run --: {run:?}",
                path.display()
            )
        });
    assert!(
        !args.contains(['\'', '"', '`', '$', '\\']),
        "{}: a start command to split at spaces: {args:?}",
        path.display()
    );
    args.split_whitespace().map(str::to_owned).collect()
}

/// Fails unless the first line of example `folder`'s README starts it with
/// `live-wasm --build ./build`.
pub fn assert_readme_gives_start_command(folder: &str) {
    let args = start_args(folder);
    assert_eq!(
        args.get(..2),
        Some(&["--build".to_owned(), "./build".to_owned()][..]),
        "guest-examples/{folder}/README.md: {args:?}"
    );
}

/// Fails unless `args`, what a test gives `live-wasm --build CMD`, start with
/// what example `folder`'s README gives after `--build ./build` (the test may
/// add options of its own after them): the command people copy is the one
/// tested.
pub fn assert_built_as_readme_says(folder: &str, args: &[&str]) {
    assert_readme_gives_start_command(folder);
    let readme = start_args(folder);
    assert!(
        args.starts_with(&readme[2..].iter().map(String::as_str).collect::<Vec<_>>()),
        "the test starts {folder} with --build {args:?}; its README: {readme:?}"
    );
}

#[test]
fn every_example_has_a_readme_whose_first_line_starts_it() {
    let mut found = Vec::new();
    for folder in ["", "components", "http"] {
        let entries = std::fs::read_dir(examples().join(folder)).expect("read guest-examples");
        for entry in entries {
            let entry = entry.expect("an entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && name != "components" && name != "http" {
                found.push(if folder.is_empty() {
                    name
                } else {
                    format!("{folder}/{name}")
                });
            }
        }
    }
    found.sort();
    assert_eq!(found, EXAMPLES, "guest-examples/ holds other examples");
    for folder in EXAMPLES {
        assert!(!start_args(folder).is_empty(), "{folder}: no arguments");
    }
}

#[test]
fn the_hello_example_runs_as_its_readme_says() {
    let args = start_args("hello");
    assert_eq!(args, ["guest-examples/hello/main.wat"]);
    let cache = crate::support::Dir::new();
    let output = cache
        .command()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--once")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run live-wasm");
    assert_eq!(
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).as_ref(),
            String::from_utf8_lossy(&output.stderr).as_ref()
        ),
        (Some(0), "Hello from live-wasm!\n", "")
    );
    let comment = std::fs::read_to_string(examples().join("hello/main.wat")).expect("main.wat");
    assert!(
        comment.contains(&format!(";;   cargo run -- {}\n", args[0])),
        "main.wat's comment starts it otherwise"
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
