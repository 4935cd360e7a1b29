//! Issue 23's attacks on what the host does for a guest beside running it: the
//! values a chain of component `use` makes the host hold (defect 14) and what
//! `--interpreter` grants the guest (defect 16). One regression test each,
//! named after the defect.

use std::path::Path;

use crate::support::{Dir, Stream, live_wasm, once};

/// The phrase SECURITY.md, the README and the first status line all use for
/// what `--interpreter` grants: they must say the same.
const INTERPRETER_GRANT: &str =
    "the script's folder and everything beneath it, read-only, as `.` and by its own path";

/// `forward: func(data: list<u8>) -> u32`, as each hop of a chain declares it.
const FORWARD: &str = r#"(export "forward" (func (param "data" (list u8)) (result u32)))"#;

/// Pages each memory of a chain has: room for 3 MiB (48 pages) past offset 16.
const PAGES: u32 = 49;

/// The entry of a chain: `go()` passes the first `bytes` of its memory, as a
/// `list<u8>`, to `forward` of `demo:p1/api`, and returns what that returns.
fn chain_entry(bytes: u32) -> String {
    format!(
        r#"(component
  (import "demo:p1/api@0.1.0" (instance $next {FORWARD}))
  (core module $mem (memory (export "memory") {PAGES}))
  (core instance $mem (instantiate $mem))
  (core func $next (canon lower (func $next "forward") (memory (core memory $mem "memory"))))
  (core module $m
    (import "next" "forward" (func $next (param i32 i32) (result i32)))
    (func (export "go") (result i32) (call $next (i32.const 0) (i32.const {bytes}))))
  (core instance $i (instantiate $m (with "next" (instance (export "forward" (func $next))))))
  (func (export "go") (result u32) (canon lift (core func $i "go"))))
"#
    )
}

/// Hop `k` of a chain of `last` hops: `demo:pK/api`'s `forward` takes the list
/// into its own memory and passes it on to `demo:pK+1/api`, adding 1 to what
/// comes back; the last hop returns the list's length.
fn chain_hop(k: u32, last: u32) -> String {
    let (import, lowering, core_import, body, with) = if k < last {
        (
            format!(
                r#"(import "demo:p{}/api@0.1.0" (instance $next {FORWARD}))"#,
                k + 1
            ),
            r#"(core func $next (canon lower (func $next "forward") (memory (core memory $mem "memory"))))"#,
            r#"(import "next" "forward" (func $next (param i32 i32) (result i32)))"#,
            "(i32.add (call $next (local.get 0) (local.get 1)) (i32.const 1))",
            r#"(with "next" (instance (export "forward" (func $next))))"#,
        )
    } else {
        (String::new(), "", "", "(local.get 1)", "")
    };
    format!(
        r#"(component
  {import}
  (core module $mem
    (memory (export "memory") {PAGES})
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 16)))
  (core instance $mem (instantiate $mem))
  {lowering}
  (core module $m
    {core_import}
    (func (export "forward") (param i32 i32) (result i32) {body}))
  (core instance $i (instantiate $m {with}))
  (func $forward (param "data" (list u8)) (result u32)
    (canon lift (core func $i "forward") (memory (core memory $mem "memory"))
      (realloc (core func $mem "realloc"))))
  (instance $api (export "forward" (func $forward)))
  (export "demo:p{k}/api@0.1.0" (instance $api)))
"#
    )
}

/// The peak resident memory of process `pid` (its `VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

#[test]
fn defect_14_a_list_forwarded_down_12_components_is_bounded_on_the_host() {
    let dir = Dir::new();
    for k in 1..=12 {
        dir.write(&format!("p{k}.wat"), &chain_hop(k, 12));
    }
    // A small list crosses all 12 hops: the bound leaves real use alone.
    dir.write("small.wat", &chain_entry(64 << 10));
    let (code, stdout, stderr) = once(
        &dir,
        &["--max-memory", "256MiB", "--invoke", "go()", "small.wat"],
    );
    assert_eq!((code, stdout.trim()), (0, "65547"), "{stderr}");

    // 1 MiB is 48 MiB of host values per hop (a `Val` is 48 bytes since
    // wasmtime 50; 40 before): the chain is refused by name where the values
    // held would pass the cap.
    dir.write("mid.wat", &chain_entry(1 << 20));
    let (code, _, stderr) = once(
        &dir,
        &["--max-memory", "256MiB", "--invoke", "go()", "mid.wat"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "p2.wat: demo:p3/api@0.1.0.forward: the values held on the host for calls \
             across components would pass 256.0 MiB, along mid.wat -> p1.wat -> p2.wat -> \
             p3.wat: 144.0 MiB held, and p3.wat passes"
        ),
        "{stderr}"
    );

    // The issue's 3 MiB: 120 MiB of host values for one hop, more than a
    // third of the cap (its copy may take three times that while it grows):
    // refused before it is copied, and the host's peak stays under the cap.
    dir.write("main.wat", &chain_entry(3 << 20));
    let mut live = live_wasm(
        &dir,
        &["--max-memory", "256MiB", "--invoke", "go()", "main.wat"],
    );
    live.expect_run(1, "start: error");
    let detail = live.expect(Stream::Err, |line| line.contains("values held on the host"));
    assert!(
        detail.contains(
            "the values held on the host for calls across components would pass 256.0 MiB: \
             main.wat passes (to a component or to the host) or returns more than the \
             85.3 MiB one call may copy now"
        ),
        "{detail}"
    );
    let peak = peak_rss(live.pid());
    assert!(peak < 256 << 20, "peak RSS {} MiB", peak >> 20);
}

/// A stand-in for an interpreter: a WASI command that, for each of its
/// arguments after its own name (the script first), opens that path as
/// wasi-libc does (a path under its second preopen's name, the folder by its
/// own path, there; any other in its first preopen, `.`) and prints `PATH:
/// CONTENTS` or `PATH: denied`.
const READER: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name"
    (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; True when the argument starts with the second preopen's name (its
  ;; length at 3004, the name at 3100) and a `/`.
  (func $under_second (param $arg i32) (param $len i32) (result i32) (local $n i32) (local $i i32)
    (local.set $n (i32.load (i32.const 3004)))
    (if (i32.or (i32.eqz (local.get $n)) (i32.le_u (local.get $len) (local.get $n)))
      (then (return (i32.const 0))))
    (if (i32.ne (i32.load8_u (i32.add (local.get $arg) (local.get $n))) (i32.const 47))
      (then (return (i32.const 0))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (if (i32.ne (i32.load8_u (i32.add (local.get $arg) (local.get $i)))
                  (i32.load8_u (i32.add (i32.const 3100) (local.get $i))))
        (then (return (i32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.const 1))
  (data (i32.const 600) ": denied\n")
  (func $put (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $strlen (param $at i32) (result i32) (local $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $at) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $n))
  (func (export "_start") (local $i i32) (local $arg i32) (local $len i32)
    (local $fd i32) (local $path i32) (local $path_len i32) (local $skip i32)
    (drop (call $args_sizes_get (i32.const 100) (i32.const 104)))
    (drop (call $args_get (i32.const 1000) (i32.const 2000)))
    (if (i32.eqz (call $fd_prestat_get (i32.const 4) (i32.const 3000)))
      (then (drop (call $fd_prestat_dir_name (i32.const 4) (i32.const 3100)
                    (i32.load (i32.const 3004))))))
    (local.set $i (i32.const 1))
    (block $end (loop $each
      (br_if $end (i32.ge_u (local.get $i) (i32.load (i32.const 100))))
      (local.set $arg (i32.load (i32.add (i32.const 1000) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $len (call $strlen (local.get $arg)))
      (call $put (local.get $arg) (local.get $len))
      (local.set $fd (i32.const 3))
      (local.set $path (local.get $arg))
      (local.set $path_len (local.get $len))
      (if (call $under_second (local.get $arg) (local.get $len))
        (then
          (local.set $skip (i32.add (i32.load (i32.const 3004)) (i32.const 1)))
          (local.set $fd (i32.const 4))
          (local.set $path (i32.add (local.get $arg) (local.get $skip)))
          (local.set $path_len (i32.sub (local.get $len) (local.get $skip)))))
      ;; path_open(FD, no symlink following, PATH, no flags, fd_read, ..., &fd at 108)
      (if (i32.eqz (call $path_open (local.get $fd) (i32.const 0) (local.get $path) (local.get $path_len)
            (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 108)))
        (then
          (call $put (i32.const 600) (i32.const 2))
          (i32.store (i32.const 16) (i32.const 4000))
          (i32.store (i32.const 20) (i32.const 200))
          (drop (call $fd_read (i32.load (i32.const 108)) (i32.const 16) (i32.const 1) (i32.const 24)))
          (call $put (i32.const 4000) (i32.load (i32.const 24)))
          (call $put (i32.const 608) (i32.const 1)))
        (else (call $put (i32.const 600) (i32.const 9))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each)))))
"#;

#[test]
fn defect_16_interpreter_grants_exactly_what_the_first_status_line_says() {
    let dir = Dir::new();
    dir.write("reader.wat", READER);
    dir.write("secret.txt", "the key beside the project");
    std::fs::create_dir_all(dir.path("proj/lib")).expect("mkdir proj/lib");
    dir.write("proj/main.script", "the script");
    dir.write("proj/lib/helper.txt", "its helper");
    std::os::unix::fs::symlink("../secret.txt", dir.path("proj/link")).expect("symlink");
    let secret = dir.path("secret.txt");
    let secret = secret.to_str().expect("utf-8 path");
    let folder = dir.path("proj");
    let under = |path: &str| format!("{}/{path}", folder.display());
    let (code, stdout, stderr) = once(
        &dir,
        &[
            "--interpreter",
            "reader.wat",
            "proj/main.script",
            "--",
            "lib/helper.txt",
            "../secret.txt",
            "link",
            secret,
            &under("lib/helper.txt"),
            &under("../secret.txt"),
            &under("link"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");

    // The first status line names the folder and says what it grants ...
    let first = stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "[live-wasm] warning: --interpreter grants the guest {}: {INTERPRETER_GRANT}",
            folder.display()
        ),
        "{stderr}"
    );
    // ... and that is what the guest can read: the folder's tree, by `.` and
    // by its own path (the script's, as the guest is given it), nothing
    // outside it, through `..`, a symlink or an absolute path.
    assert_eq!(
        stdout,
        format!(
            "{}: the script\nlib/helper.txt: its helper\n../secret.txt: denied\n\
             link: denied\n{secret}: denied\n{}: its helper\n{}: denied\n{}: denied\n",
            under("main.script"),
            under("lib/helper.txt"),
            under("../secret.txt"),
            under("link"),
        )
    );
    // Read-only: the folder exists as `.` but cannot be written (the
    // sandbox tests pin `:ro`); SECURITY.md and the README say the same.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for doc in ["SECURITY.md", "README.md"] {
        let text = std::fs::read_to_string(repo.join(doc)).expect("the doc");
        assert!(
            text.contains(INTERPRETER_GRANT),
            "{doc} does not say what --interpreter grants"
        );
        assert!(
            !text.contains("`--interpreter` | nothing to the guest"),
            "{doc}"
        );
    }
}
