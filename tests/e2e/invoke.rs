//! `--invoke NAME [ARGS]`: one export, arguments by its signature, results printed.

use crate::support::{Dir, live_wasm, once, once_fails};

const MATH: &str = r#"(module
  (global $ready (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $ready (i32.const 100)))
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (global.get $ready) (i32.add (local.get 0) (local.get 1))))
  (func (export "wide") (param i64 f64) (result i64 f64)
    (local.get 0) (f64.mul (local.get 1) (f64.const 2))))"#;

#[test]
fn results_print_one_per_line() {
    let dir = Dir::new();
    dir.write("math.wat", MATH);
    // `_initialize` ran first: 100 + 2 + 16.
    assert_eq!(
        once(&dir, &["--invoke", "add", "math.wat", "--", "2", "0x10"]),
        (0, "118\n".into(), String::new())
    );
    assert_eq!(
        once(
            &dir,
            &["--invoke", "wide", "math.wat", "--", "-9000000000", "1.25"]
        )
        .1,
        "-9000000000\n2.5\n"
    );
}

#[test]
fn bad_arguments_name_the_signature() {
    let dir = Dir::new();
    dir.write("math.wat", MATH);
    once_fails(
        &dir,
        &["--invoke", "add", "math.wat", "--", "1"],
        1,
        "--invoke add: expects 2 argument(s) (i32 i32), got 1",
    );
    once_fails(
        &dir,
        &["--invoke", "add", "math.wat", "--", "1", "x"],
        1,
        "argument 2 `x` is not a valid i32",
    );
    once_fails(
        &dir,
        &["--invoke", "nope", "math.wat"],
        1,
        "the entry exports no function `nope`",
    );
}

#[test]
fn every_save_invokes_again() {
    let dir = Dir::new();
    dir.write("math.wat", MATH);
    let mut live = live_wasm(&dir, &["--invoke", "add", "math.wat", "--", "2", "3"]);
    live.expect_stdout("105");
    live.expect_run(1, "start: ok");
    dir.write(
        "math.wat",
        &MATH.replace("(i32.add (local.get 0)", "(i32.mul (local.get 0)"),
    );
    live.expect_stdout("106");
    live.expect_run(2, "math.wat changed: ok");
}
