//! WAT guests for the tests, built from small pieces.

/// A WASI command that prints `line` then does `then` (WAT instructions).
pub fn print_then(line: &str, then: &str) -> String {
    let text = format!("{line}\n");
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "{escaped}")
  (func $print
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  ;; Sleeps for `seconds` with one relative clock subscription at 64.
  (func $sleep (param $seconds i64)
    (i64.store (i32.const 64) (i64.const 42))
    (i32.store8 (i32.const 72) (i32.const 0))
    (i32.store (i32.const 80) (i32.const 1))
    (i64.store (i32.const 88) (i64.mul (local.get $seconds) (i64.const 1000000000)))
    (i64.store (i32.const 96) (i64.const 0))
    (i32.store16 (i32.const 104) (i32.const 0))
    (drop (call $poll_oneoff (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160))))
  (func (export "_start")
    (call $print)
    {then}))
"#,
        escaped = line.replace('\\', "\\\\").replace('"', "\\\"") + "\\n",
        len = text.len(),
    )
}

/// A WASI command that prints `line`.
pub fn print(line: &str) -> String {
    print_then(line, "")
}

/// Prints `line`, then spins forever.
pub fn print_then_loop(line: &str) -> String {
    print_then(line, "(loop $spin (br $spin))")
}

/// Prints `line`, then sleeps for a minute in `poll_oneoff`.
pub fn print_then_sleep(line: &str) -> String {
    print_then(line, "(call $sleep (i64.const 60))")
}

/// Prints `line`, then exits with `code` through `proc_exit`.
pub fn print_then_exit(line: &str, code: i32) -> String {
    print_then(line, &format!("(call $proc_exit (i32.const {code}))"))
}

/// Prints `line`, then divides by zero in a function named `$divide`.
pub fn print_then_trap(line: &str) -> String {
    print_then(
        line,
        "(drop (call $divide (i32.const 1) (i32.const 0))))
  (func $divide (param i32 i32) (result i32)
    (i32.div_s (local.get 0) (local.get 1))",
    )
}
