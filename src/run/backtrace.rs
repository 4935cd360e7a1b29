//! A trap's backtrace in the guest's own terms: its frames' names demangled
//! already (`super::demangle`), and the frames of the Rust runtime around the
//! program's own (the panic machinery, std, core, wasi-libc's start) folded
//! into one line each, so that a panic shows the program's frames, with their
//! source places, and not twenty of std's.

use std::fmt::Write as _;

use super::outcome::Frame;

/// The part of the Rust runtime a frame belongs to, in the order the folded
/// line names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Runtime {
    Std,
    Core,
    Alloc,
    /// `std::panicking`, `core::panicking`, `__rustc::rust_panic`, `panic_abort`...
    PanicMachinery,
    /// wasi-libc around `main`: `_start`, `__main_void`, `abort`.
    Libc,
}

impl Runtime {
    fn words(self) -> &'static str {
        match self {
            Runtime::Std => "std",
            Runtime::Core => "core",
            Runtime::Alloc => "alloc",
            Runtime::PanicMachinery => "panic machinery",
            Runtime::Libc => "wasi-libc",
        }
    }
}

/// wasi-libc's functions that start a program and end it by aborting.
const LIBC: &[&str] = &[
    "_start",
    "_start.command_export",
    "__main_void",
    "__main_argc_argv",
    "__wasm_call_ctors",
    "__wasm_call_dtors",
    "abort",
    "exit",
    "_Exit",
];

/// Which part of the runtime the function `name` (demangled) is, if any.
/// `<T as Trait>::f` is the runtime's when both are (the program's impl of
/// `core::fmt::Display` is the program's); a type without a path (`fn()`,
/// `i32`) goes with its trait.
fn runtime(name: &str) -> Option<Runtime> {
    if LIBC.contains(&name) {
        return Some(Runtime::Libc);
    }
    if matches!(name, "rust_panic" | "rust_begin_unwind") || name.starts_with("__rust_") {
        return Some(Runtime::PanicMachinery);
    }
    let Some(inner) = name.strip_prefix('<') else {
        return crate_part(name);
    };
    let (ty, trait_path) = inner.split_once(" as ").unwrap_or((inner, ""));
    let ty = ty
        .trim_start_matches(['&', '*', '[', '('])
        .trim_start_matches("mut ")
        .trim_start_matches("const ")
        .trim_start_matches("dyn ");
    let of_type = ty.contains("::").then(|| crate_part(ty));
    let of_trait = (!trait_path.is_empty()).then(|| crate_part(trait_path));
    match (of_type, of_trait) {
        (Some(Some(part)), None | Some(Some(_))) | (None, Some(Some(part))) => Some(part),
        _ => None,
    }
}

/// Which part of the runtime the crate of `path` is, if any.
fn crate_part(path: &str) -> Option<Runtime> {
    let mut segments = path.split("::");
    let krate = segments.next().unwrap_or_default();
    let module = segments.next();
    match krate {
        "__rustc" | "panic_abort" | "panic_unwind" => Some(Runtime::PanicMachinery),
        "std" | "core" | "alloc" if module == Some("panicking") => Some(Runtime::PanicMachinery),
        "std" => Some(Runtime::Std),
        "core" => Some(Runtime::Core),
        "alloc" => Some(Runtime::Alloc),
        _ => None,
    }
}

/// Whether `frame` is one of the Rust runtime's or wasi-libc's, not the program's.
pub(super) fn is_runtime(frame: &Frame) -> bool {
    runtime(&frame.function).is_some()
}

/// A trap's backtrace, innermost first: `0: divide (main @ 0x33) at main.wat:4:5`.
/// Two or more frames of the runtime in a row, Rust's among them, are one
/// line: `⋯ 12 frames of the Rust runtime (std, panic machinery, wasi-libc)`
/// (a C program's `_start` stays as it is).
pub(super) fn render(frames: &[Frame]) -> String {
    let mut text = String::new();
    if frames.is_empty() {
        return text;
    }
    text.push_str("wasm backtrace:\n");
    let parts: Vec<Option<Runtime>> = frames.iter().map(|f| runtime(&f.function)).collect();
    let mut index = 0;
    while index < frames.len() {
        let run = parts[index..]
            .iter()
            .take_while(|part| part.is_some())
            .count();
        let rusty = parts[index..index + run]
            .iter()
            .any(|part| !matches!(part, Some(Runtime::Libc)));
        if run >= 2 && rusty {
            let mut named: Vec<Runtime> = parts[index..index + run]
                .iter()
                .flatten()
                .copied()
                .collect();
            named.sort();
            named.dedup();
            let named: Vec<&str> = named.into_iter().map(Runtime::words).collect();
            let _ = writeln!(
                text,
                "  ⋯ {run} frames of the Rust runtime ({})",
                named.join(", ")
            );
            index += run;
            continue;
        }
        let shown = run.max(1);
        for (at, frame) in frames.iter().enumerate().skip(index).take(shown) {
            line(&mut text, at, frame);
        }
        index += shown;
    }
    text
}

/// One frame's line.
fn line(text: &mut String, index: usize, frame: &Frame) {
    let _ = write!(text, "  {index}: {} ({}", frame.function, frame.module);
    if let Some(offset) = frame.offset {
        let _ = write!(text, " @ {offset:#x}");
    }
    text.push(')');
    if let Some(source) = &frame.source {
        let _ = write!(text, " at {source}");
    }
    text.push('\n');
}

#[cfg(test)]
mod tests {
    use super::super::outcome::SourcePlace;
    use super::*;

    fn frame(function: &str, source: Option<&str>) -> Frame {
        Frame {
            module: "m".into(),
            function: function.into(),
            offset: Some(0x10),
            source: source.map(|file| SourcePlace {
                file: file.into(),
                line: Some(9),
                col: Some(13),
            }),
        }
    }

    #[test]
    fn the_runtime_around_a_rust_program_is_folded() {
        let frames = [
            frame("abort", None),
            frame(
                "std::sys::pal::wasi::helpers::abort_internal",
                Some("/rustc/x/std.rs"),
            ),
            frame("std::process::abort", Some("/rustc/x/process.rs")),
            frame("__rustc::__rust_start_panic", None),
            frame("std::panicking::panic_with_hook", None),
            frame("core::panicking::panic_bounds_check", None),
            frame("hello_live::main", Some("src/main.rs")),
            frame("<hello_live::Shape as core::fmt::Display>::fmt", None),
            frame("<fn() as core::ops::function::FnOnce<()>>::call_once", None),
            frame("std::rt::lang_start::{{closure}}", None),
            frame("__main_void", None),
            frame("_start", Some("wasisdk://v30.0/crt1-command.c")),
        ];
        assert_eq!(
            render(&frames),
            "wasm backtrace:
  ⋯ 6 frames of the Rust runtime (std, panic machinery, wasi-libc)
  6: hello_live::main (m @ 0x10) at src/main.rs:9:13
  7: <hello_live::Shape as core::fmt::Display>::fmt (m @ 0x10)
  ⋯ 4 frames of the Rust runtime (std, core, wasi-libc)
"
        );
        assert!(is_runtime(&frames[0]) && !is_runtime(&frames[6]));
        for (name, part) in [
            ("<i32 as core::fmt::Display>::fmt", Some(Runtime::Core)),
            ("<&mut alloc::vec::Vec<u8> as hello_live::Sum>::sum", None),
            (
                "<&mut alloc::vec::Vec<u8> as core::ops::Drop>::drop",
                Some(Runtime::Alloc),
            ),
            ("<&hello_live::Shape as core::fmt::Debug>::fmt", None),
            ("<[hello_live::Shape]>::first", None),
            ("<std::io::Stdout>::lock", Some(Runtime::Std)),
            ("hello_live::main::{{closure}}", None),
            ("stdlib::f", None),
        ] {
            assert_eq!(runtime(name), part, "{name}");
        }
    }

    #[test]
    fn lone_runtime_frames_and_a_c_programs_start_stay() {
        let frames = [
            frame("core::panicking::panic", None),
            frame("divide", Some("main.c")),
            frame("__original_main", Some("main.c")),
            frame("_start", None),
            frame("_start.command_export", None),
        ];
        assert_eq!(
            render(&frames),
            "wasm backtrace:
  0: core::panicking::panic (m @ 0x10)
  1: divide (m @ 0x10) at main.c:9:13
  2: __original_main (m @ 0x10) at main.c:9:13
  3: _start (m @ 0x10)
  4: _start.command_export (m @ 0x10)
"
        );
        assert_eq!(render(&[]), "");
    }
}
