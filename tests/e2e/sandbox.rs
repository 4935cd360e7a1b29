//! Deny by default: the guest sees no environment, no directory, no stdin, no
//! arguments beyond its name, unless granted.

use crate::support::{Dir, live_wasm, once, once_fails};

/// A guest that reports what it can reach, one line each:
/// `args N`, `env N` (counts), `preopen OK|ERR` (fd 3 exists?),
/// `write OK|ERR` (creating `out.txt` in the preopen), `stdin <first line>`.
const PROBE: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "args env preopen write stdin OK ERR out.txt")
  ;; print(ptr, len) then a space
  (func $put (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $digit (param $n i32)
    (i32.store8 (i32.const 300) (i32.add (i32.const 48) (local.get $n)))
    (call $put (i32.const 300) (i32.const 1)))
  (func $space (i32.store8 (i32.const 301) (i32.const 32)) (call $put (i32.const 301) (i32.const 1)))
  (func $newline (i32.store8 (i32.const 302) (i32.const 10)) (call $put (i32.const 302) (i32.const 1)))
  (func $ok_or_err (param $errno i32)
    (if (i32.eqz (local.get $errno))
      (then (call $put (i32.const 229) (i32.const 2)))
      (else (call $put (i32.const 232) (i32.const 3)))))
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 400) (i32.const 404)))
    (call $put (i32.const 200) (i32.const 4)) (call $space)
    (call $digit (i32.load (i32.const 400))) (call $newline)

    (drop (call $environ_sizes_get (i32.const 400) (i32.const 404)))
    (call $put (i32.const 205) (i32.const 3)) (call $space)
    (call $digit (i32.load (i32.const 400))) (call $newline)

    (call $put (i32.const 209) (i32.const 7)) (call $space)
    (call $ok_or_err (call $fd_prestat_get (i32.const 3) (i32.const 400))) (call $newline)

    ;; path_open(fd 3, dirflags 0, "out.txt", O_CREAT, every p1 right, fdflags 0, &fd)
    (call $put (i32.const 217) (i32.const 5)) (call $space)
    (call $ok_or_err (call $path_open (i32.const 3) (i32.const 0) (i32.const 236) (i32.const 7)
      (i32.const 1) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 400)))
    (call $newline)

    ;; read up to 50 bytes of stdin and print them
    (call $put (i32.const 223) (i32.const 5)) (call $space)
    (i32.store (i32.const 16) (i32.const 500))
    (i32.store (i32.const 20) (i32.const 50))
    (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
    (call $put (i32.const 500) (i32.load (i32.const 24)))
    (call $newline)))
"#;

#[test]
fn nothing_is_granted_by_default() {
    let dir = Dir::new();
    dir.write("probe.wat", PROBE);
    let (code, stdout, _) = once(&dir, &["probe.wat"]);
    assert_eq!(code, 0);
    assert_eq!(stdout, "args 1\nenv 0\npreopen ERR\nwrite ERR\nstdin \n");
}

#[test]
fn grants_are_given_as_asked() {
    let dir = Dir::new();
    dir.write("probe.wat", PROBE);
    dir.write("input.txt", "hello");
    std::fs::create_dir(dir.path("data")).expect("mkdir");
    let (code, stdout, stderr) = once(
        &dir,
        &[
            "--env",
            "A=1",
            "--env",
            "PATH",
            "--dir",
            "data",
            "--stdin",
            "input.txt",
            "probe.wat",
            "--",
            "x",
            "y",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "args 3\nenv 2\npreopen OK\nwrite OK\nstdin hello\n");
    assert!(dir.path("data/out.txt").exists());

    std::fs::remove_file(dir.path("data/out.txt")).expect("rm");
    let (_, stdout, _) = once(&dir, &["--dir", "data::/data:ro", "probe.wat"]);
    assert_eq!(stdout, "args 1\nenv 0\npreopen OK\nwrite ERR\nstdin \n");
    assert!(!dir.path("data/out.txt").exists());
}

#[test]
fn watch_mode_feeds_the_stdin_file_afresh_and_watches_it() {
    let dir = Dir::new();
    dir.write("probe.wat", PROBE);
    dir.write("input.txt", "one");
    let mut live = live_wasm(&dir, &["--stdin", "input.txt", "probe.wat"]);
    live.expect_stdout("stdin one");
    live.expect_run(1, "start: ok");
    dir.write("input.txt", "two");
    live.expect_stdout("stdin two");
    live.expect_run(2, "input.txt changed: ok");
}

#[test]
fn a_missing_preopen_is_refused_at_start() {
    let dir = Dir::new();
    dir.write("probe.wat", PROBE);
    once_fails(&dir, &["--dir", "nowhere", "probe.wat"], 2, "--dir nowhere");
}

/// Every file below `dir`, with its bytes (a symlink: its target), to tell
/// whether a run changed anything.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("read_dir") {
            let path = entry.expect("entry").path();
            let kind = std::fs::symlink_metadata(&path).expect("lstat").file_type();
            let bytes = if kind.is_symlink() {
                let target = std::fs::read_link(&path).expect("readlink");
                target.into_os_string().into_encoded_bytes()
            } else if kind.is_dir() {
                folders.push(path.clone());
                Vec::new()
            } else {
                std::fs::read(&path).expect("read")
            };
            found.push((path, bytes));
        }
    }
    found.sort();
    found
}

/// Runs the probe with `grants` and `asks`; returns each ask's outcome line
/// (`OK ...` or `ERR kind`).
fn probe_outcomes(dir: &Dir, probe: &str, grants: &[&str], asks: &[&str]) -> Vec<String> {
    let mut args = grants.to_vec();
    args.extend([probe, "--"]);
    args.extend(asks);
    let (code, stdout, stderr) = once(dir, &args);
    assert_eq!(code, 0, "{stderr}");
    let outcomes: Vec<String> = asks
        .iter()
        .map(|ask| {
            let prefix = format!("{ask}: ");
            let line = stdout.lines().find(|line| line.starts_with(&prefix));
            let line = line.unwrap_or_else(|| panic!("no answer to {ask}:\n{stdout}"));
            line[prefix.len()..].to_owned()
        })
        .collect();
    outcomes
}

fn the_file_sandbox_holds_through_every_path(target: &'static str) {
    let Some(probe) = crate::components::sandbox_probe(target) else {
        return;
    };
    let dir = Dir::new();
    std::fs::copy(&probe, dir.path("probe.wasm")).expect("copy probe");
    std::fs::create_dir_all(dir.path("data/sub")).expect("mkdir");
    dir.write("data/in.txt", "inside");
    dir.write("outside.txt", "outside");
    let symlink = |target: &std::path::Path, link: &str| {
        std::os::unix::fs::symlink(target, dir.path(link)).expect("symlink");
    };
    symlink("../outside.txt".as_ref(), "data/up");
    symlink(&dir.path("outside.txt"), "data/abs");
    symlink("..".as_ref(), "data/dirup");
    let escapes = [
        "read:data/up",
        "read:data/abs",
        "read:data/dirup/outside.txt",
        "read:data/../outside.txt",
        "read:outside.txt",
        "write:data/up",
        "write:data/abs",
        "append:data/up",
        "truncate:data/abs",
        "rename:data/in.txt>data/../stolen.txt",
        "rename:data/in.txt>data/dirup/stolen.txt",
        "hardlink:data/in.txt>data/dirup/linked.txt",
        "mkdir:data/dirup/made",
        "unlink:data/dirup/outside.txt",
        "list:data/dirup",
        "stat:data/up",
    ];
    let writes = [
        "write:data/in.txt",
        "create:data/new.txt",
        "append:data/in.txt",
        "truncate:data/in.txt",
        "times:data/in.txt",
        "mkdir:data/made",
        "rmdir:data/sub",
        "unlink:data/in.txt",
        "rename:data/in.txt>data/moved.txt",
        "hardlink:data/in.txt>data/hard.txt",
    ];
    let before = snapshot(dir.root());
    let refused = |outcomes: &[String], asks: &[&str]| {
        for (ask, outcome) in asks.iter().zip(outcomes) {
            assert!(outcome.starts_with("ERR"), "{target}: {ask}: {outcome}");
        }
    };

    // Nothing granted: nothing at all.
    let all: Vec<&str> = ["read:data/in.txt", "list:data"]
        .into_iter()
        .chain(writes)
        .chain(escapes)
        .collect();
    refused(&probe_outcomes(&dir, "probe.wasm", &[], &all), &all);
    assert_eq!(snapshot(dir.root()), before, "{target}: nothing granted");

    // Read-only: reads inside, no write of any kind, no way out.
    let read_only = ["--dir", "data::data:ro"];
    let reads = probe_outcomes(&dir, "probe.wasm", &read_only, &["read:data/in.txt"]);
    assert_eq!(reads, ["OK inside"], "{target}");
    let asks: Vec<&str> = writes.into_iter().chain(escapes).collect();
    refused(
        &probe_outcomes(&dir, "probe.wasm", &read_only, &asks),
        &asks,
    );
    assert_eq!(snapshot(dir.root()), before, "{target}: read-only");

    // Writable: writes inside, still no way out.
    let outcomes = probe_outcomes(&dir, "probe.wasm", &["--dir", "data"], &escapes);
    refused(&outcomes, &escapes);
    let outside_now: Vec<_> = snapshot(dir.root())
        .into_iter()
        .filter(|(path, _)| !path.starts_with(dir.path("data")))
        .collect();
    let outside_before: Vec<_> = before
        .into_iter()
        .filter(|(path, _)| !path.starts_with(dir.path("data")))
        .collect();
    assert_eq!(outside_now, outside_before, "{target}: writable");
    let outcomes = probe_outcomes(&dir, "probe.wasm", &["--dir", "data"], &writes[..2]);
    assert_eq!(outcomes, ["OK written", "OK created"], "{target}");
}

#[test]
fn the_file_sandbox_holds_through_every_path_for_modules() {
    the_file_sandbox_holds_through_every_path("wasm32-wasip1");
}

#[test]
fn the_file_sandbox_holds_through_every_path_for_components() {
    the_file_sandbox_holds_through_every_path("wasm32-wasip2");
}
