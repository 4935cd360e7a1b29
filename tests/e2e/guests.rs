//! WAT guests for the tests, built from small pieces.

/// A WASI command that prints `line` then does `then` (WAT instructions).
pub fn print_then(line: &str, then: &str) -> String {
    command(&format!("{line}\n"), "", then)
}

/// A WASI command that does `before` (WAT instructions; `(call $sleep
/// (i64.const SECONDS))` sleeps), then prints `text` (whole lines or not),
/// then does `after`.
pub fn command(text: &str, before: &str, after: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") {pages})
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
    {before}
    (call $print)
    {after}))
"#,
        pages = (1024 + text.len()) / 65536 + 1,
        escaped = wat_string(text),
        len = text.len(),
    )
}

/// `text` as the inside of a WAT string: quotes, backslashes and anything
/// but printable ASCII escaped by byte.
pub fn wat_string(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'"' | b'\\' => format!("\\{}", byte as char),
            b' '..=b'~' => (byte as char).to_string(),
            _ => format!("\\{byte:02x}"),
        })
        .collect()
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

/// Rust `source`, as `src/main.rs` of crate `hello_live` in `dir`, built by
/// rustc for `target` with debug info (`wasm32-wasip1`: a core module;
/// `wasm32-wasip2`: a component): the name of the file made, or `None` (the
/// skip said) when the target is missing here.
pub fn rust(dir: &crate::support::Dir, source: &str, target: &str) -> Option<String> {
    let needs = if target == "wasm32-wasip1" {
        "rust"
    } else {
        "components/rust"
    };
    let env = match crate::languages::toolchain(needs) {
        Ok(env) => env,
        Err(missing) => {
            crate::support::skip_example(needs, &missing);
            return None;
        }
    };
    std::fs::create_dir_all(dir.path("src")).expect("mkdir src");
    dir.write("src/main.rs", source);
    let wasm = format!("hello-live-{target}.wasm");
    let output = std::process::Command::new("rustc")
        .args(["--edition", "2024", "--crate-name", "hello_live", "-g"])
        .args(["--target", target, "src/main.rs", "-o", &wasm])
        .current_dir(dir.root())
        .envs(env)
        .output()
        .expect("run rustc");
    assert!(
        output.status.success(),
        "rustc: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(wasm)
}
