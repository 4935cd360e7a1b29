//! A trap's backtrace in the guest's own terms: symbols demangled (Rust's
//! `_ZN…17h<hash>E` and `_R…`, C++'s `_Z…`), and the frames of the Rust
//! runtime around the program's own (the panic machinery, std, core,
//! wasi-libc's start) folded into one line each, so that a panic shows the
//! program's frames, with their source places, and not twenty of std's.

use std::fmt::Write as _;

use super::outcome::Frame;

/// The longest name demangled, in bytes: the name section is the guest's to
/// write, and no compiler's symbol is this long.
const MAX_MANGLED: usize = 4096;

/// The longest name a demangler may write, in bytes: a short symbol can name
/// a huge one (C++'s substitutions nest: 260 bytes made 240 MB in 6 s), and a
/// line is cut past this when shown anyway.
const MAX_DEMANGLED: usize = 4096;

/// `name` as its language writes it: `hello_live::main`, `geo::Shape::area(int)`
/// (Rust's hash dropped), cut after [`MAX_DEMANGLED`] bytes; any other name as
/// it is.
pub(super) fn demangle(name: &str) -> String {
    if name.len() > MAX_MANGLED {
        return name.to_owned();
    }
    let mut out = Bounded::default();
    let written = if let Ok(rust) = rustc_demangle::try_demangle(name) {
        // `{:#}` leaves out the hash.
        write!(out, "{rust:#}")
    } else if name.starts_with("_Z")
        && let Ok(symbol) = cpp_demangle::Symbol::new(name)
    {
        symbol.structured_demangle(&mut out, &cpp_demangle::DemangleOptions::default())
    } else {
        return name.to_owned();
    };
    match written {
        Ok(()) => out.text,
        Err(_) if out.full => out.text + "…",
        Err(_) => name.to_owned(),
    }
}

/// A demangler's output, up to [`MAX_DEMANGLED`] bytes: past them, the
/// write fails and the demangler stops.
#[derive(Default)]
struct Bounded {
    text: String,
    full: bool,
}

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, piece: &str) -> std::fmt::Result {
        let room = MAX_DEMANGLED - self.text.len();
        if piece.len() <= room {
            self.text.push_str(piece);
            return Ok(());
        }
        let cut = (0..=room)
            .rev()
            .find(|at| piece.is_char_boundary(*at))
            .unwrap_or(0);
        self.text.push_str(&piece[..cut]);
        self.full = true;
        Err(std::fmt::Error)
    }
}

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

    #[test]
    fn rust_and_cpp_symbols_read_as_their_languages_write_them() {
        assert_eq!(
            demangle("_ZN10hello_live4main17hcdda25da4266c98fE"),
            "hello_live::main"
        );
        assert_eq!(
            demangle("_RNvNtCset5xJoy1xWQ_3std7process5abort"),
            "std::process::abort"
        );
        assert_eq!(
            demangle("_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17hc47bc9f035078f2aE"),
            "std::rt::lang_start::{{closure}}"
        );
        assert_eq!(demangle("_ZN3geo5Shape4areaEi"), "geo::Shape::area(int)");
        assert_eq!(
            demangle("_ZNK3geo6Circle4areaEv"),
            "geo::Circle::area() const"
        );
        for plain in ["main", "_start", "func[3]", "_Z", "_Zzz", "$divide"] {
            assert_eq!(demangle(plain), plain);
        }
        let long = format!("_ZN{}E", "1a".repeat(MAX_MANGLED));
        assert_eq!(demangle(&long), long);
    }

    #[test]
    fn a_name_that_expands_without_end_is_cut_at_once() {
        // `std::pair<S, S>` of the last substitution, 40 times: 2^40 `a`s.
        let mut name = String::from("_Z1f1aSt4pairIS_S_E");
        for level in 1..=40u32 {
            // The index in base 36, upper case: `S1_`, ..., `SZ_`, `S10_`.
            let digit = |n: u32| {
                char::from_digit(n, 36)
                    .expect("a digit")
                    .to_ascii_uppercase()
            };
            let index = match level / 36 {
                0 => digit(level).to_string(),
                high => format!("{}{}", digit(high), digit(level % 36)),
            };
            name.push_str(&format!("S0_IS{index}_S{index}_E"));
        }
        let started = std::time::Instant::now();
        let shown = demangle(&name);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(shown.starts_with("f(a, std::pair<a, a>, "), "{shown}");
        assert!(shown.ends_with('…') && shown.len() <= MAX_DEMANGLED + 3);
    }

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
