//! `--once`: one run, the guest's status as ours.

use crate::guests::{print, print_then, print_then_exit, print_then_trap};
use crate::support::{Dir, once, once_fails};

#[test]
fn exit_codes_follow_the_guest() {
    let dir = Dir::new();
    dir.write("ok.wat", &print("fine"));
    dir.write("exit3.wat", &print_then_exit("leaving", 3));
    dir.write("exit0.wat", &print_then_exit("leaving", 0));
    dir.write("trap.wat", &print_then_trap("dividing"));
    dir.write("bad.wat", "(module (func (oops)))");

    let (code, stdout, stderr) = once(&dir, &["ok.wat"]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "fine\n", ""));

    assert_eq!(once(&dir, &["exit3.wat"]).0, 3);
    assert_eq!(once(&dir, &["exit0.wat"]).0, 0);

    let (code, stdout, stderr) = once(&dir, &["trap.wat"]);
    assert_eq!((code, stdout.as_str()), (134, "dividing\n"));
    assert!(stderr.contains("integer divide by zero"), "{stderr}");
    assert!(stderr.contains("divide"), "{stderr}");

    once_fails(&dir, &["bad.wat"], 1, "bad.wat:1:");

    once_fails(&dir, &["missing.wat"], 1, "missing.wat: file not found");
}

#[test]
fn start_functions_old_wasi_and_empty_modules_run() {
    let dir = Dir::new();
    // The start function runs at instantiation; there is no `_start`.
    dir.write(
        "start.wat",
        r#"(module
  (import "wasi_unstable" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "old wasi start\n")
  (func $main
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 15))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (start $main))"#,
    );
    dir.write("empty.wat", "(module)");

    assert_eq!(
        once(&dir, &["start.wat"]),
        (0, "old wasi start\n".into(), String::new())
    );
    assert_eq!(
        once(&dir, &["empty.wat"]),
        (0, String::new(), String::new())
    );
}

#[test]
fn binary_modules_run_and_garbage_is_named() {
    let dir = Dir::new();
    let wasm = wat::parse_str(print("from binary")).expect("valid wat");
    std::fs::write(dir.path("main.wasm"), wasm).expect("write");
    std::fs::write(dir.path("junk.wasm"), b"\x7fELF\x02\x01").expect("write");
    std::fs::write(dir.path("cut.wasm"), b"\0asm\x01\0\0\0\x01\x05").expect("write");

    assert_eq!(once(&dir, &["main.wasm"]).1, "from binary\n");
    once_fails(
        &dir,
        &["junk.wasm"],
        1,
        "junk.wasm: not a WebAssembly binary",
    );
    once_fails(&dir, &["cut.wasm"], 1, "cut.wasm: invalid module");
}

#[test]
fn a_sleep_that_runs_out_reports_its_clock_event() {
    let dir = Dir::new();
    // After a zero-second sleep, print "woke" only if exactly one event came
    // back carrying the subscription's userdata (42).
    let then = r#"(call $sleep (i64.const 0))
    (if (i32.and (i32.eq (i32.load (i32.const 160)) (i32.const 1))
                 (i64.eq (i64.load (i32.const 128)) (i64.const 42)))
      (then (call $proc_exit (i32.const 7))))"#;
    dir.write("sleep.wat", &crate::guests::print_then("sleeping", then));
    assert_eq!(once(&dir, &["sleep.wat"]).0, 7);
}

#[test]
fn winch_and_the_disk_cache_run_the_same_guest() {
    let dir = Dir::new();
    dir.write("main.wat", &print("compiled"));
    assert_eq!(
        once(&dir, &["--compiler", "winch", "main.wat"]).1,
        "compiled\n"
    );
    assert_eq!(
        once(&dir, &["--no-incremental-cache", "main.wat"]).1,
        "compiled\n"
    );

    let cached = |dir: &Dir| std::fs::read_dir(dir.path("cache")).map_or(0, |d| d.count());
    for _ in 0..2 {
        let (code, stdout, stderr) = once(&dir, &["--cache", "cache", "main.wat"]);
        assert_eq!(
            (code, stdout.as_str(), stderr.as_str()),
            (0, "compiled\n", "")
        );
        assert_eq!(cached(&dir), 1, "one compiled module, written once");
    }
    // Another compiler's code is another file.
    once(
        &dir,
        &["--cache", "cache", "--compiler", "winch", "main.wat"],
    );
    assert_eq!(cached(&dir), 2);
}

#[test]
fn colour_only_when_asked_for_or_on_a_terminal() {
    let dir = Dir::new();
    dir.write("trap.wat", &print_then_trap("dividing"));
    let run = |env: &[(&str, &str)]| {
        let output = dir
            .command()
            .args(["--once", "trap.wat"])
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .envs(env.iter().copied())
            .output()
            .expect("run");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(!run(&[]).contains('\x1b'), "piped: plain");
    assert!(
        run(&[("CLICOLOR_FORCE", "1")]).contains("\x1b[31m"),
        "forced: red"
    );
    assert!(
        !run(&[("NO_COLOR", "1")]).contains('\x1b'),
        "NO_COLOR: plain"
    );
}

#[test]
fn validation_errors_and_traps_point_into_the_wat() {
    let dir = Dir::new();
    dir.write(
        "invalid.wat",
        "(module\n  (func $f (result i32)\n    (i32.add\n      (i32.const 1)\n      (i64.const 2))))\n",
    );
    let stderr = once_fails(
        &dir,
        &["invalid.wat"],
        1,
        "type mismatch: expected i32, found i64",
    );
    assert!(stderr.contains("invalid.wat:3:6"), "{stderr}");
    assert!(stderr.contains("3 |     (i32.add\n"), "the line: {stderr}");
    assert!(stderr.contains("|      ^"), "a caret: {stderr}");

    // A trap names the .wat line of each frame: the text carries DWARF lines.
    dir.write(
        "trap.wat",
        "(module\n  (func $divide (param i32) (result i32)\n    (i32.div_u (i32.const 1) (local.get 0)))\n  (func (export \"_start\") (drop (call $divide (i32.const 0)))))\n",
    );
    let stderr = once_fails(&dir, &["trap.wat"], 134, "trap: integer divide by zero");
    assert!(stderr.contains("0: divide (trap @ "), "{stderr}");
    assert!(stderr.contains("trap.wat:3:"), "the source line: {stderr}");
}

#[test]
fn a_directory_as_entry_is_refused_at_start() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path("src")).expect("mkdir");
    once_fails(
        &dir,
        &["src"],
        2,
        "src is a directory: ENTRY is a .wat or .wasm file",
    );
}

/// What compilers emit beyond MVP, and `wasmtime run` accepts, loads and runs:
/// bulk memory, multi-value, reference types, tail calls, SIMD, exceptions.
#[test]
fn features_that_compilers_emit_load() {
    let dir = Dir::new();
    dir.write(
        "main.wat",
        &print_then(
            "features",
            "(memory.fill (i32.const 200) (i32.const 7) (i32.const 8))
    (memory.copy (i32.const 300) (i32.const 200) (i32.const 8))
    (drop (table.grow $refs (ref.null func) (i32.const 1)))
    (drop (i32x4.extract_lane 0 (v128.load (i32.const 300))))
    (call $pair) (drop) (drop)
    (drop (call $count (i32.const 1000)))
    (drop (block $caught (result i32)
      (try_table (catch $oops $caught) (throw $oops (i32.const 5)))
      (i32.const 0)))",
        )
        .replace(
            "(func (export \"_start\")",
            "(table $refs 0 funcref)
  (tag $oops (param i32))
  (func $pair (result i32 i32) (i32.const 1) (i32.const 2))
  (func $count (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (return_call $count (i32.sub (local.get 0) (i32.const 1))))))
  (func (export \"_start\")",
        ),
    );
    let (code, stdout, stderr) = once(&dir, &["main.wat"]);
    assert_eq!((code, stdout.as_str()), (0, "features\n"), "{stderr}");
}
