//! Limits per run: a guest that hits one is stopped with a message naming it,
//! and the next save runs.

use crate::guests::{print, print_then, print_then_loop, print_then_sleep};
use crate::support::{Dir, Stream, live_wasm, once, once_fails};

#[test]
fn timeout_stops_loops_and_sleeps_then_the_next_save_runs() {
    let dir = Dir::new();
    dir.write("main.wat", &print_then_loop("spinning"));
    let mut live = live_wasm(&dir, &["--timeout", "300ms", "main.wat"]);
    live.expect_stdout("spinning");
    live.expect_run(1, "start: timed out: stopped after 300ms (--timeout)");

    dir.write("main.wat", &print_then_sleep("sleeping"));
    live.expect_stdout("sleeping");
    live.expect_run(2, "timed out");

    dir.write("main.wat", &print("quick"));
    live.expect_stdout("quick");
    live.expect_run(3, "main.wat changed: ok");

    let (code, stdout, stderr) = once(&dir, &["--timeout", "200ms", "main.wat"]);
    assert_eq!((code, stdout.as_str()), (0, "quick\n"), "{stderr}");
    dir.write("main.wat", &print_then_loop("spinning"));
    once_fails(
        &dir,
        &["--timeout", "200ms", "main.wat"],
        124,
        "timed out: stopped after 200ms (--timeout)",
    );
}

#[test]
fn fuel_runs_out_with_the_budget_named() {
    let dir = Dir::new();
    dir.write("main.wat", &print("counted"));
    let mut live = live_wasm(&dir, &["--fuel", "100000", "main.wat"]);
    live.expect_stdout("counted");
    let line = live.expect_run(1, "start: ok");
    assert!(line.contains("· fuel "), "{line}");

    dir.write("main.wat", &print_then_loop("spinning"));
    live.expect_stdout("spinning");
    live.expect_run(2, "out of fuel: used all 100000 units (--fuel)");

    dir.write("main.wat", &print("fine again"));
    live.expect_stdout("fine again");
    live.expect_run(3, "ok");

    dir.write("main.wat", &print_then_loop("spinning"));
    once_fails(
        &dir,
        &["--fuel", "5000", "main.wat"],
        134,
        "out of fuel: used all 5000 units (--fuel)",
    );
}

/// Prints what `memory.grow` by `pages` returned: the old size, or -1.
fn grow(pages: u32) -> String {
    print_then(
        "growing",
        &format!(
            "(if (i32.lt_s (memory.grow (i32.const {pages})) (i32.const 0))
               (then (call $proc_exit (i32.const 9))))"
        ),
    )
}

#[test]
fn max_memory_caps_every_module_of_the_run() {
    let dir = Dir::new();
    // Three pages in the entry: over a 128 KiB cap at instantiation.
    dir.write(
        "big.wat",
        &print("big").replace(
            "(memory (export \"memory\") 1)",
            "(memory (export \"memory\") 3)",
        ),
    );
    once_fails(
        &dir,
        &["--max-memory", "128KiB", "big.wat"],
        1,
        "memory: the run asked for 192.0 KiB in all, over --max-memory 128.0 KiB",
    );

    // memory.grow past the cap returns -1 (the guest exits 9), under it works.
    dir.write("grow.wat", &grow(1));
    assert_eq!(once(&dir, &["--max-memory", "128KiB", "grow.wat"]).0, 0);
    dir.write("grow.wat", &grow(2));
    once_fails(
        &dir,
        &["--max-memory", "128KiB", "grow.wat"],
        9,
        "over --max-memory 128.0 KiB",
    );

    // A used module's memory counts too: one page here, two there.
    dir.write("dep.wat", r#"(module (memory (export "mem") 2))"#);
    dir.write(
        "uses.wat",
        r#"(module (import "dep" "mem" (memory 1)) (memory $own 1) (func (export "_start")))"#,
    );
    assert_eq!(once(&dir, &["--max-memory", "256KiB", "uses.wat"]).0, 0);
    let (code, _, stderr) = once(&dir, &["--max-memory", "128KiB", "uses.wat"]);
    assert_eq!(code, 1, "{stderr}");

    // In watch mode the session goes on to the next save.
    let mut live = live_wasm(&dir, &["--max-memory", "128KiB", "big.wat"]);
    live.expect_run(1, "start: error");
    live.expect(Stream::Err, |l| l.contains("over --max-memory 128.0 KiB"));
    dir.write("big.wat", &print("small now"));
    live.expect_stdout("small now");
    live.expect_run(2, "ok");
}

#[test]
fn endless_recursion_is_a_stack_overflow() {
    let dir = Dir::new();
    dir.write(
        "main.wat",
        r#"(module (func $recurse (call $recurse)) (func (export "_start") (call $recurse)))"#,
    );
    let stderr = once_fails(&dir, &["main.wat"], 134, "trap: stack overflow");
    assert!(stderr.contains("0: recurse (main @ "), "{stderr}");
}

#[test]
fn a_flood_of_output_is_still_stopped_by_a_save() {
    let dir = Dir::new();
    dir.write(
        "main.wat",
        &print_then("flood", "(loop $again (call $print) (br $again))"),
    );
    let mut live = live_wasm(&dir, &["main.wat"]);
    live.expect_stdout("flood");
    dir.write("main.wat", &print("calm"));
    live.expect_run(1, "start: stopped by a change");
    live.expect_stdout("calm");
    live.expect_run(2, "main.wat changed: ok");
}

#[test]
fn trap_kinds_are_said_in_words() {
    let dir = Dir::new();
    let cases = [
        ("unreachable", "wasm `unreachable` instruction executed"),
        (
            "(drop (i32.load (i32.const 70000)))",
            "out of bounds memory access",
        ),
        (
            "(drop (i32.div_s (i32.const 1) (i32.const 0)))",
            "integer divide by zero",
        ),
        (
            "(drop (i32.div_s (i32.const -2147483648) (i32.const -1)))",
            "integer overflow",
        ),
        (
            "(call_indirect (type $takes_i32) (i32.const 5) (i32.const 0))",
            "indirect call type mismatch",
        ),
        (
            "(call_indirect (type $nothing) (i32.const 1))",
            "uninitialized element",
        ),
    ];
    for (body, words) in cases {
        dir.write(
            "main.wat",
            &format!(
                r#"(module
  (type $nothing (func))
  (type $takes_i32 (func (param i32)))
  (memory 1)
  (table 2 funcref)
  (elem (i32.const 0) $target)
  (func $target)
  (func $culprit {body})
  (func (export "_start") (call $culprit)))"#
            ),
        );
        let (code, _, stderr) = once(&dir, &["main.wat"]);
        assert_eq!(code, 134, "{body}: {stderr}");
        assert!(
            stderr.contains(&format!("trap: {words}")),
            "{body}: {stderr}"
        );
        assert!(stderr.contains("0: culprit (main @ "), "{body}: {stderr}");
        assert!(
            stderr.contains("1: func[2] (main @ "),
            "the caller, `_start`: {stderr}"
        );
    }
}

#[test]
fn a_stack_overflow_in_watch_mode_is_followed_by_the_next_save() {
    let dir = Dir::new();
    dir.write(
        "main.wat",
        r#"(module (func $recurse (call $recurse)) (func (export "_start") (call $recurse)))"#,
    );
    let mut live = live_wasm(&dir, &["main.wat"]);
    live.expect_run(1, "start: trap: stack overflow");
    dir.write("main.wat", &print("recovered"));
    live.expect_stdout("recovered");
    live.expect_run(2, "ok");
}
