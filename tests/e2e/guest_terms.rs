//! Errors in the guest's own terms: a Rust panic says `panicked at
//! src/main.rs:L:C: <message>`, not `trap: wasm unreachable instruction
//! executed`; frames read `hello_live::main` and `geo::Shape::area(int)`, not
//! `_ZN10hello_live4main17h…E`; the Rust runtime's frames fold into a line.

use serde_json::Value;

use crate::guests::rust;
use crate::support::{Dir, live_wasm, once, once_with_stdin};

/// A program that panics in a function of its own (line 2), called from
/// `main` (line 8).
const PANICS: &str = r#"fn answer(values: &[u32], index: usize) -> u32 {
    *values.get(index).expect("no answer at that index")
}

fn main() {
    println!("Hello from Rust!");
    let values = [1, 2, 3];
    println!("{}", answer(&values, 7));
}
"#;

/// The place std's own panic message names (`src/main.rs:2:24`).
fn panic_place(stderr: &str) -> &str {
    stderr
        .lines()
        .find_map(|line| line.split_once(" panicked at ")?.1.strip_suffix(':'))
        .unwrap_or_else(|| panic!("no panic message from std in:\n{stderr}"))
}

/// What a run of [`PANICS`] built for `target` says: the panic in its words,
/// the program's two frames demangled with their places, the runtime folded.
fn a_panic_reads_as_rust(target: &str) {
    let dir = Dir::new();
    let Some(wasm) = rust(&dir, PANICS, target) else {
        return;
    };
    let (code, stdout, stderr) = once(&dir, &[&wasm]);
    assert_eq!(
        (code, stdout.as_str()),
        (134, "Hello from Rust!\n"),
        "{stderr}"
    );
    let place = panic_place(&stderr);
    assert!(place.starts_with("src/main.rs:2:"), "{place}");
    let ours: Vec<&str> = stderr
        .lines()
        .skip_while(|line| !line.starts_with("[live-wasm]"))
        .collect();
    assert_eq!(
        ours.first().copied(),
        Some(format!("[live-wasm] panicked at {place}: no answer at that index").as_str()),
        "{stderr}"
    );
    assert_eq!(ours.get(1).copied(), Some("  wasm backtrace:"), "{stderr}");
    let frames = &ours[2..];
    let folded =
        |line: &&str| line.starts_with("    ⋯ ") && line.contains(" frames of the Rust runtime (");
    assert!(
        folded(&frames[0]),
        "the panic machinery is not folded:\n{stderr}"
    );
    assert!(
        folded(&frames[frames.len() - 1]),
        "the start is not folded:\n{stderr}"
    );
    let own: Vec<&&str> = frames.iter().filter(|line| !folded(line)).collect();
    assert_eq!(own.len(), 2, "{stderr}");
    assert!(
        own[0].contains(": hello_live::answer (") && own[0].contains(" at src/main.rs:2:"),
        "{stderr}"
    );
    assert!(
        own[1].contains(": hello_live::main (") && own[1].contains(" at src/main.rs:8:"),
        "{stderr}"
    );
    for mangled in ["_ZN", "_RN", "17h", "std::", "core::"] {
        let shown = frames
            .iter()
            .any(|line| !folded(line) && line.contains(mangled));
        assert!(!shown, "{mangled} in a frame:\n{stderr}");
    }

    // The events say it as well, at the panic's place.
    let (_, _, events) = once(&dir, &["--events", "json", &wasm]);
    let error: Value = events
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|event| event["event"] == "error")
        .unwrap_or_else(|| panic!("no error event:\n{events}"));
    assert_eq!(
        error["message"],
        format!("panicked at {place}: no answer at that index"),
        "{events}"
    );
    assert_eq!(
        (&error["file"], &error["line"]),
        (&"src/main.rs".into(), &2.into())
    );
}

#[test]
fn a_rust_panic_says_where_and_what_with_the_programs_frames() {
    a_panic_reads_as_rust("wasm32-wasip1");
}

#[test]
fn a_rust_components_panic_says_where_and_what_with_the_programs_frames() {
    a_panic_reads_as_rust("wasm32-wasip2");
}

#[test]
fn a_panic_in_a_live_session_is_said_on_the_runs_line() {
    let dir = Dir::new();
    let Some(wasm) = rust(&dir, PANICS, "wasm32-wasip1") else {
        return;
    };
    let mut live = live_wasm(&dir, &[&wasm]);
    live.expect_stdout("Hello from Rust!");
    live.expect_run(1, "start: panicked at src/main.rs:2:");
}

#[test]
fn cpp_and_rust_names_are_demangled_and_made_safe() {
    let dir = Dir::new();
    // A C++ symbol of 40 nested `std::pair`s of the one before: 2^40 `a`s
    // demangled, from 500 bytes.
    let mut bomb = String::from("_Z1f1aSt4pairIS_S_E");
    for level in 1..=40u32 {
        let digit = |n: u32| {
            char::from_digit(n, 36)
                .expect("a digit")
                .to_ascii_uppercase()
        };
        let index = match level / 36 {
            0 => digit(level).to_string(),
            high => format!("{}{}", digit(high), digit(level % 36)),
        };
        bomb.push_str(&format!("S0_IS{index}_S{index}_E"));
    }
    // The names as compilers leave them in the name section (wasm-ld keeps
    // C++'s mangled under `--no-demangle`, rustc's always), one a guest made
    // to drive the terminal, and the bomb.
    let wat = r#"(module
  (func $_ZNK3geo5Shape4areaEi (param i32) (result i32)
    (i32.div_s (i32.const 10) (local.get 0)))
  (func $_ZN10hello_live4main17hcdda25da4266c98fE
    (drop (call $_ZNK3geo5Shape4areaEi (i32.const 0))))
  (func $evil (@name "\1b]52;c;SGVsbG8=\07\1b[2Jevil")
    (call $_ZN10hello_live4main17hcdda25da4266c98fE))
  (func $BOMB (call $evil))
  (func (export "_start") (call $BOMB)))
"#;
    dir.write("main.wat", &wat.replace("BOMB", &bomb));
    // Bounded: a demangler that ran on would not end.
    let (code, _, stderr) = once_with_stdin(&dir, &["main.wat"], Some(b""));
    assert_eq!(code, 134, "{stderr}");
    assert!(
        stderr.contains("    0: geo::Shape::area(int) const (main @ ")
            && stderr.contains("    1: hello_live::main (main @ ")
            && stderr.contains("    2: \\u{1b}]52;c;SGVsbG8=\\u{7}\\u{1b}[2Jevil (main @ ")
            && stderr.contains("    3: f(a, std::pair<a, a>, std::pair<std::pair<a, a>, "),
        "{stderr}"
    );
    assert!(stderr.len() < 64 << 10, "{} bytes", stderr.len());
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains("_Z"),
        "{stderr}"
    );
}
