//! Components written by hand in the text format, for the component tests and
//! the save-to-output bench (which includes this file): commands that print
//! through `wasi:cli/stdout`, and providers of interfaces for `use`.

/// A `wasi:cli/run` command component that prints `text` as a line, then
/// runs the core instructions `then`, then returns `status` (0: ok, 1: err).
/// What it imports is what printing needs, no more: the smallest command.
pub fn command(text: &str, then: &str, status: u32) -> String {
    command_with(&Parts::default(), Some(text), then, status)
}

/// A command that prints `text`, then sleeps `ms` milliseconds in
/// `wasi:clocks` (a pollable it blocks on).
pub fn sleeping(text: &str, ms: u64) -> String {
    let then = format!("(call $sleep_ms (i64.const {ms}))");
    command_with(&SLEEP, Some(text), &then, 0)
}

/// A command that prints `text`, then, each as a line `TAG HEX` (16 hex
/// digits): the wall clock (`w` seconds, `n` nanoseconds) and the monotonic
/// clock (`m`); `wasi:random/random`'s `get-random-u64` (`r`) and
/// `get-random-bytes` (`b`, 8 of them, little-endian); `wasi:random/insecure`'s
/// `get-insecure-random-u64` (`i`) and the first half of `insecure-seed` (`s`).
/// Then it sleeps `ms` milliseconds, prints the clocks and the dice again,
/// and ends with `z 0000000000000000`.
pub fn clocks_and_dice(text: &str, ms: u64) -> String {
    let then = format!(
        "(call $clocks) (call $dice) (call $sleep_ms (i64.const {ms})) (call $clocks) (call $dice)
      (call $line (i32.const 122) (i64.const 0))"
    );
    command_with(&CLOCKS_AND_DICE, Some(text), &then, 0)
}

/// A command that prints, as a line, the string `greeting()` of
/// `demo:greeter/api@0.1.0` returns: a string crossing two components.
pub fn greeting_printer() -> String {
    command_with(&GREETING, None, "(call $print_greeting)", 0)
}

/// What a command imports and does beyond printing its line.
#[derive(Default)]
struct Parts<'a> {
    /// Component imports.
    imports: &'a str,
    /// `canon lower`s of them (the allocator's memory is `$memory`).
    lowerings: &'a str,
    /// Imports of the core module, from `host`.
    core_imports: &'a str,
    /// Functions of the core module.
    core_funcs: &'a str,
    /// What `host` exports to the core module, besides printing.
    host_exports: &'a str,
    /// An allocator beside the memory (`$memory`'s `realloc`), for the
    /// strings an import returns.
    allocator: bool,
}

/// A bump allocator, enough for the strings of one run.
const ALLOCATOR: &str = r#"(global $next (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      (local.set $at (global.get $next))
      (global.set $next (i32.add (global.get $next) (local.get 3)))
      (local.get $at))"#;

const SLEEP: Parts = Parts {
    imports: r#"(import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type $p (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow $p))))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer 1 $pollable (type $p'))
    (export "pollable" (type $p (eq $p')))
    (export "subscribe-duration" (func (param "when" u64) (result (own $p))))))"#,
    lowerings: r#"(core func $subscribe (canon lower (func $clock "subscribe-duration")))
  (core func $block (canon lower (func $poll "[method]pollable.block")))"#,
    core_imports: r#"(import "host" "subscribe" (func $subscribe (param i64) (result i32)))
    (import "host" "block" (func $block (param i32)))"#,
    core_funcs: r#"(func $sleep_ms (param $ms i64)
      (call $block (call $subscribe (i64.mul (local.get $ms) (i64.const 1000000)))))"#,
    host_exports: r#"(export "subscribe" (func $subscribe))
    (export "block" (func $block))"#,
    allocator: false,
};

/// Both clocks, every source of randomness, a sleep, and a line printer.
const CLOCKS_AND_DICE: Parts = Parts {
    imports: r#"(import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type $p (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow $p))))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer 1 $pollable (type $p'))
    (export "pollable" (type $p (eq $p')))
    (export "now" (func (result u64)))
    (export "subscribe-duration" (func (param "when" u64) (result (own $p))))))
  (import "wasi:clocks/wall-clock@0.2.0" (instance $wall
    (type $datetime (record (field "seconds" u64) (field "nanoseconds" u32)))
    (export "datetime" (type $dt (eq $datetime)))
    (export "now" (func (result $dt)))))
  (import "wasi:random/random@0.2.0" (instance $random
    (export "get-random-bytes" (func (param "len" u64) (result (list u8))))
    (export "get-random-u64" (func (result u64)))))
  (import "wasi:random/insecure@0.2.0" (instance $insecure
    (export "get-insecure-random-u64" (func (result u64)))))
  (import "wasi:random/insecure-seed@0.2.0" (instance $seed
    (export "insecure-seed" (func (result (tuple u64 u64))))))"#,
    lowerings: r#"(core func $subscribe (canon lower (func $clock "subscribe-duration")))
  (core func $block (canon lower (func $poll "[method]pollable.block")))
  (core func $mono-now (canon lower (func $clock "now")))
  (core func $wall-now (canon lower (func $wall "now") (memory (core memory $memory "memory"))))
  (core func $random-u64 (canon lower (func $random "get-random-u64")))
  (core func $random-bytes (canon lower (func $random "get-random-bytes")
    (memory (core memory $memory "memory")) (realloc (core func $memory "realloc"))))
  (core func $insecure-u64 (canon lower (func $insecure "get-insecure-random-u64")))
  (core func $insecure-seed (canon lower (func $seed "insecure-seed")
    (memory (core memory $memory "memory"))))"#,
    core_imports: r#"(import "host" "subscribe" (func $subscribe (param i64) (result i32)))
    (import "host" "block" (func $block (param i32)))
    (import "host" "mono-now" (func $mono-now (result i64)))
    (import "host" "wall-now" (func $wall-now (param i32)))
    (import "host" "random-u64" (func $random-u64 (result i64)))
    (import "host" "random-bytes" (func $random-bytes (param i64 i32)))
    (import "host" "insecure-u64" (func $insecure-u64 (result i64)))
    (import "host" "insecure-seed" (func $insecure-seed (param i32)))"#,
    // Results land at 32 (the time), 48 (the seed) and 64 (the bytes' list);
    // a line is put together at 2048 from the digits at 1024.
    core_funcs: r#"(data (i32.const 1024) "0123456789abcdef")
    (func $line (param $tag i32) (param $value i64) (local $i i32)
      (i32.store8 (i32.const 2048) (local.get $tag))
      (i32.store8 (i32.const 2049) (i32.const 32))
      (loop $digits
        (i32.store8 (i32.add (i32.const 2050) (local.get $i))
          (i32.load8_u (i32.add (i32.const 1024) (i32.wrap_i64 (i64.and (i64.const 15)
            (i64.shr_u (local.get $value)
              (i64.extend_i32_u (i32.sub (i32.const 60) (i32.shl (local.get $i) (i32.const 2))))))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $digits (i32.lt_u (local.get $i) (i32.const 16))))
      (i32.store8 (i32.const 2066) (i32.const 10))
      (call $write (call $get-stdout) (i32.const 2048) (i32.const 19) (i32.const 0)))
    (func $clocks
      (call $wall-now (i32.const 32))
      (call $line (i32.const 119) (i64.load (i32.const 32)))
      (call $line (i32.const 110) (i64.load32_u (i32.const 40)))
      (call $line (i32.const 109) (call $mono-now)))
    (func $dice
      (call $line (i32.const 114) (call $random-u64))
      (call $random-bytes (i64.const 8) (i32.const 64))
      (call $line (i32.const 98) (i64.load (i32.load (i32.const 64))))
      (call $line (i32.const 105) (call $insecure-u64))
      (call $insecure-seed (i32.const 48))
      (call $line (i32.const 115) (i64.load (i32.const 48))))
    (func $sleep_ms (param $ms i64)
      (call $block (call $subscribe (i64.mul (local.get $ms) (i64.const 1000000)))))"#,
    host_exports: r#"(export "subscribe" (func $subscribe))
    (export "block" (func $block))
    (export "mono-now" (func $mono-now))
    (export "wall-now" (func $wall-now))
    (export "random-u64" (func $random-u64))
    (export "random-bytes" (func $random-bytes))
    (export "insecure-u64" (func $insecure-u64))
    (export "insecure-seed" (func $insecure-seed))"#,
    allocator: true,
};

const GREETING: Parts = Parts {
    imports: r#"(import "demo:greeter/api@0.1.0" (instance $greeter
    (export "greeting" (func (result string)))))"#,
    lowerings: r#"(core func $greeting (canon lower (func $greeter "greeting")
    (memory (core memory $memory "memory")) (realloc (core func $memory "realloc"))
    string-encoding=utf8))"#,
    core_imports: r#"(import "host" "greeting" (func $greeting (param i32)))"#,
    // The greeting, then a newline (at 100, where `text` would be).
    core_funcs: r#"(func $print_greeting
      (call $greeting (i32.const 8))
      (call $write (call $get-stdout) (i32.load (i32.const 8)) (i32.load (i32.const 12)) (i32.const 0))
      (call $write (call $get-stdout) (i32.const 100) (i32.const 1) (i32.const 0)))"#,
    host_exports: r#"(export "greeting" (func $greeting))"#,
    allocator: true,
};

/// A command made of `parts`, printing `text` (if any) before `then`.
fn command_with(parts: &Parts, text: Option<&str>, then: &str, status: u32) -> String {
    let Parts {
        imports,
        lowerings,
        core_imports,
        core_funcs,
        host_exports,
        allocator,
    } = parts;
    let allocator = if *allocator { ALLOCATOR } else { "" };
    let line = format!("{}\n", text.unwrap_or_default());
    let print = match text {
        Some(_) => format!(
            "(call $write (call $get-stdout) (i32.const 100) (i32.const {}) (i32.const 0))",
            line.len()
        ),
        None => String::new(),
    };
    let line = line.replace('\n', "\\n");
    format!(
        r#"(component
  (import "wasi:io/error@0.2.0" (instance $error (export "error" (type (sub resource)))))
  (alias export $error "error" (type $error-t))
  (import "wasi:io/streams@0.2.0" (instance $streams
    (alias outer 1 $error-t (type $err))
    (export "error" (type $error (eq $err)))
    (export "output-stream" (type $os (sub resource)))
    (type $stream-error (variant (case "last-operation-failed" (own $error)) (case "closed")))
    (export "stream-error" (type $se (eq $stream-error)))
    (export "[method]output-stream.blocking-write-and-flush"
      (func (param "self" (borrow $os)) (param "contents" (list u8)) (result (result (error $se)))))))
  (alias export $streams "output-stream" (type $output-stream))
  (import "wasi:cli/stdout@0.2.0" (instance $stdout
    (alias outer 1 $output-stream (type $os'))
    (export "output-stream" (type $os (eq $os')))
    (export "get-stdout" (func (result (own $os))))))
  {imports}
  (core module $memory
    (memory (export "memory") 1)
    {allocator})
  (core instance $memory (instantiate $memory))
  (core func $get-stdout (canon lower (func $stdout "get-stdout")))
  (core func $write (canon lower (func $streams "[method]output-stream.blocking-write-and-flush")
    (memory (core memory $memory "memory"))))
  {lowerings}
  (core module $main
    (import "host" "memory" (memory 1))
    (import "host" "get-stdout" (func $get-stdout (result i32)))
    (import "host" "write" (func $write (param i32 i32 i32 i32)))
    {core_imports}
    (data (i32.const 100) "{line}")
    {core_funcs}
    (func (export "run") (result i32)
      {print}
      {then}
      (i32.const {status})))
  (core instance $host
    (export "memory" (memory $memory "memory"))
    (export "get-stdout" (func $get-stdout))
    (export "write" (func $write))
    {host_exports})
  (core instance $main (instantiate $main (with "host" (instance $host))))
  (func $run (result (result)) (canon lift (core func $main "run")))
  (instance $cli (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli)))
"#
    )
}

/// A provider of `demo:NAME/api` whose `get` returns `value` plus how many
/// times this instance was called before (so a shared instance shows).
pub fn provider(name: &str, value: u32) -> String {
    format!(
        r#"(component
  (core module $m
    (global $calls (mut i32) (i32.const 0))
    (func (export "get") (result i32)
      (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
      (i32.add (i32.const {value}) (i32.sub (global.get $calls) (i32.const 1)))))
  (core instance $i (instantiate $m))
  (func $get (result u32) (canon lift (core func $i "get")))
  (instance $api (export "get" (func $get)))
  (export "demo:{name}/api@0.1.0" (instance $api)))
"#
    )
}
