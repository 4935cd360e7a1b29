//! `live.use` with arbitrary pointers, lengths and names: the entry `main.wat`
//! is generated to call `live.use(ptr, len)` a few times over a memory whose
//! contents the fuzzer lays (module names, raw bytes) and that it exports as
//! `memory`, under another name, or not at all; the siblings `a`, `b`,
//! `lib/c`, `ü` are absent, fine, trapping, invalid, a component, importing
//! another module's memory (chains and cycles), using another from their start
//! function, or spinning until the fuel runs out.
//!
//! A small model of the documented contract (`wit/README.md`) predicts every
//! code; the entry checks each code it gets against the prediction and exits
//! with `10 + 10 * call - code` on a mismatch (`16 + 10 * call` for a code
//! outside -5..=0), and a sibling exits with 99 if a nested `live.use` gives an
//! undocumented code. Invariants, besides those every run keeps:
//! - each call returns the code the model predicts;
//! - every failure the guest saw was said (a `use-failed` event, in order);
//! - the run ends `ok`, or out of fuel when the model reaches a spinning module;
//! - the module outside the root never runs (exit 113).
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use live_wasm_fuzz::{Harness, OUTSIDE_EXIT};

static HARNESS: LazyLock<Harness> = LazyLock::new(|| Harness::new("main.wat").expect("harness"));

/// The files of the siblings, by slot.
const SLOTS: [&str; 4] = ["a", "b", "lib/c", "ü"];

/// Names the guest may use, the slots' first.
fn names() -> Vec<String> {
    let mut names: Vec<String> = SLOTS.iter().map(|s| s.to_string()).collect();
    for name in [
        "main",
        "missing",
        "escape",
        "escape_abs",
        "up/outside",
        "up/root/main",
        "../a",
        "/abs",
        "",
        "a/",
        "./a",
        "a\0b",
        "lib",
        "a.wat",
        "A",
        "lib/c/d",
        "a\\b",
        "lib//c",
    ] {
        names.push(name.to_owned());
    }
    names.push("l".repeat(300));
    names.push(format!("{}/{}", "d".repeat(200), "e".repeat(200)));
    names.push("l".repeat(5000));
    names
}

static NAMES: LazyLock<Vec<String>> = LazyLock::new(names);

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    Absent,
    Fine,
    Trap,
    Invalid(u8),
    Component,
    /// Imports `memory` from the module of this name.
    MemoryFrom(u8),
    /// Its start function uses the module of this name.
    Uses(u8),
    Spin,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Sibling {
    kind: Kind,
    binary: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Memory {
    None,
    Exported(u8),
    OtherName,
}

#[derive(Arbitrary, Debug)]
enum Bytes {
    Name(u8),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Segment {
    offset: u16,
    bytes: Bytes,
}

#[derive(Arbitrary, Debug)]
enum Call {
    Segment { index: u8, ptr: i8, len: i8 },
    Raw { ptr: u32, len: u32 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    memory: Memory,
    siblings: [Sibling; 4],
    segments: Vec<Segment>,
    calls: Vec<Call>,
}

/// What a `use` of a module leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Code(i32),
    /// The run runs out of fuel.
    Spin,
}

struct Model<'a> {
    input: &'a Input,
}

impl Model<'_> {
    fn pages(&self) -> u32 {
        match self.input.memory {
            Memory::None => 0,
            Memory::Exported(pages) => u32::from(pages % 3),
            Memory::OtherName => 1,
        }
    }

    /// The code of `use(name)` now; `busy` are the modules being instantiated.
    fn name(&self, name: &str, busy: &[usize]) -> Expect {
        if !plain(name) {
            return Expect::Code(-5);
        }
        if name == "main" {
            return Expect::Code(0);
        }
        match SLOTS.iter().position(|slot| *slot == name) {
            Some(slot) if !matches!(self.input.siblings[slot].kind, Kind::Absent) => {
                self.slot(slot, busy)
            }
            _ => Expect::Code(-1),
        }
    }

    fn slot(&self, slot: usize, busy: &[usize]) -> Expect {
        if busy.contains(&slot) {
            return Expect::Code(-4);
        }
        let mut busy = busy.to_vec();
        busy.push(slot);
        match self.input.siblings[slot].kind {
            Kind::Absent => Expect::Code(-1),
            Kind::Fine => Expect::Code(0),
            Kind::Trap => Expect::Code(-3),
            Kind::Invalid(_) | Kind::Component => Expect::Code(-2),
            Kind::Spin => Expect::Spin,
            Kind::MemoryFrom(target) => {
                let target = &NAMES[usize::from(target) % NAMES.len()];
                if target == "main" {
                    // Bound to the entry's export `memory`, if it has one.
                    let exported = matches!(self.input.memory, Memory::Exported(_));
                    return Expect::Code(if exported { 0 } else { -2 });
                }
                self.name(target, &busy)
            }
            Kind::Uses(target) => {
                let target = &NAMES[usize::from(target) % NAMES.len()];
                match self.name(target, &busy) {
                    Expect::Spin => Expect::Spin,
                    // Whatever it got, its start goes on.
                    Expect::Code(_) => Expect::Code(0),
                }
            }
        }
    }
}

/// The documented shape of a module name: a relative path of plain components.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\0')
        && !name.contains('\\')
        && !name.starts_with('/')
        && name.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

fn escaped(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("\\{byte:02x}")).collect()
}

const USE: &str = r#"(import "live" "use" (func $use (param i32 i32) (result i32)))"#;
const EXIT: &str = r#"(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))"#;
const EXPORTS: &str = r#"(memory (export "memory") 1) (func (export "f"))"#;

fn sibling_text(kind: Kind) -> String {
    match kind {
        Kind::Absent => String::new(),
        Kind::Fine => format!("(module {EXPORTS})"),
        Kind::Trap => format!("(module {EXPORTS} (func $s unreachable) (start $s))"),
        Kind::Invalid(which) => match which % 3 {
            0 => "(module (func".to_owned(),
            1 => "(module (func (result i32)))".to_owned(),
            _ => "(module (memory 1) (data (i32.const 0) \"x\") (func (export \"f\") (result i32) (i64.const 1)))".to_owned(),
        },
        Kind::Component => "(component)".to_owned(),
        Kind::MemoryFrom(target) => {
            let target = escaped(NAMES[usize::from(target) % NAMES.len()].as_bytes());
            format!(
                "(module (import \"{target}\" \"memory\" (memory 0)) \
                 (export \"memory\" (memory 0)) (func (export \"f\")))"
            )
        }
        Kind::Uses(target) => {
            let name = NAMES[usize::from(target) % NAMES.len()].as_bytes();
            format!(
                "(module {USE} {EXIT} {EXPORTS}
                   (data (i32.const 0) \"{}\")
                   (func $s (local $code i32)
                     (local.set $code (call $use (i32.const 0) (i32.const {})))
                     (if (i32.or (i32.gt_s (local.get $code) (i32.const 0))
                                 (i32.lt_s (local.get $code) (i32.const -5)))
                       (then (call $exit (i32.const 99)))))
                   (start $s))",
                escaped(name),
                name.len()
            )
        }
        Kind::Spin => format!("(module {EXPORTS} (func $s (loop $l (br $l))) (start $s))"),
    }
}

fn bytes_of(bytes: &Bytes) -> Vec<u8> {
    match bytes {
        Bytes::Name(index) => NAMES[usize::from(*index) % NAMES.len()].as_bytes().to_vec(),
        Bytes::Raw(raw) => raw.iter().copied().take(64).collect(),
    }
}

fuzz_target!(|input: Input| {
    let model = Model { input: &input };
    let size = model.pages() as usize * 65536;
    let mut memory = vec![0u8; size];
    let mut data = String::new();
    let mut segments = Vec::new();
    for segment in input.segments.iter().take(4) {
        let bytes = bytes_of(&segment.bytes);
        let offset = usize::from(segment.offset);
        // A segment needs a memory, and must fit in it.
        if matches!(input.memory, Memory::None) || offset + bytes.len() > size {
            continue;
        }
        memory[offset..offset + bytes.len()].copy_from_slice(&bytes);
        data.push_str(&format!(
            "(data (i32.const {offset}) \"{}\")\n",
            escaped(&bytes)
        ));
        segments.push((offset, bytes.len()));
    }

    // The calls and what each should return.
    let mut calls = String::new();
    let mut expected = Vec::new();
    for (index, call) in input.calls.iter().take(6).enumerate() {
        let (ptr, len) = match *call {
            Call::Segment {
                index: segment,
                ptr,
                len,
            } if !segments.is_empty() => {
                let (offset, length) = segments[usize::from(segment) % segments.len()];
                (
                    (offset as i64 + i64::from(ptr)) as u32,
                    (length as i64 + i64::from(len)) as u32,
                )
            }
            Call::Segment { ptr, len, .. } => (ptr as u32, len as u32),
            Call::Raw { ptr, len } => (ptr, len),
        };
        let (start, end) = (ptr as usize, ptr as usize + len as usize);
        let expect = if !matches!(input.memory, Memory::Exported(_)) || len > 4096 || end > size {
            Expect::Code(-5)
        } else {
            match std::str::from_utf8(&memory[start..end]) {
                Ok(name) => model.name(name, &[]),
                Err(_) => Expect::Code(-5),
            }
        };
        let want = match expect {
            Expect::Code(code) => code,
            Expect::Spin => 1,
        };
        calls.push_str(&format!(
            "(call $check (i32.const {index}) (call $use (i32.const {}) (i32.const {})) (i32.const {want}))\n",
            ptr as i32, len as i32
        ));
        expected.push((ptr, len, expect));
        if expect == Expect::Spin {
            break;
        }
    }

    let memory_field = match input.memory {
        Memory::None => String::new(),
        Memory::Exported(_) => format!("(memory (export \"memory\") {})", model.pages()),
        Memory::OtherName => "(memory (export \"mem\") 1)".to_owned(),
    };
    let entry = format!(
        "(module {USE} {EXIT} {memory_field}
           {data}
           (func $check (param $i i32) (param $code i32) (param $want i32)
             (if (i32.or (i32.gt_s (local.get $code) (i32.const 0))
                         (i32.lt_s (local.get $code) (i32.const -5)))
               (then (call $exit (i32.add (i32.const 16) (i32.mul (local.get $i) (i32.const 10))))))
             (if (i32.and (i32.le_s (local.get $want) (i32.const 0))
                          (i32.ne (local.get $code) (local.get $want)))
               (then (call $exit (i32.sub (i32.add (i32.const 10) (i32.mul (local.get $i) (i32.const 10)))
                                          (local.get $code))))))
           (func (export \"_start\")
             {calls}))"
    );
    let mut files = vec![("main.wat".to_owned(), entry.into_bytes())];
    for (slot, sibling) in SLOTS.iter().zip(&input.siblings) {
        if matches!(sibling.kind, Kind::Absent) {
            continue;
        }
        let text = sibling_text(sibling.kind);
        let binary = sibling.binary && !matches!(sibling.kind, Kind::Invalid(_));
        let (file, bytes) = match binary {
            true => (
                format!("{slot}.wasm"),
                wat::parse_str(&text).expect("a sibling"),
            ),
            false => (format!("{slot}.wat"), text.into_bytes()),
        };
        files.push((file, bytes));
    }

    let run = HARNESS.run(&files);
    let context = || format!("calls (ptr, len, expected): {expected:?}\nrun: {run:#?}");
    assert_ne!(
        run.exit_code,
        Some(i64::from(OUTSIDE_EXIT)),
        "the module outside ran\n{}",
        context()
    );
    assert_ne!(
        run.exit_code,
        Some(99),
        "a nested live.use got an undocumented code\n{}",
        context()
    );
    if run.outcome == "exit" {
        let code = run.exit_code.unwrap_or_default();
        let (call, got) = ((code - 10) / 10, (code - 10) % 10);
        panic!(
            "call {call}: live.use returned {}\n{}",
            if got == 6 {
                "a code outside -5..=0".to_owned()
            } else {
                format!("{}", -got)
            },
            context()
        );
    }
    let spins = expected
        .iter()
        .any(|(_, _, expect)| *expect == Expect::Spin);
    let outcome = if spins { "out-of-fuel" } else { "ok" };
    assert_eq!(run.outcome, outcome, "{}", context());
    // Every failure the entry saw was said, in order (nested ones too).
    let mut said = run.use_codes.iter();
    for (_, _, expect) in &expected {
        if let Expect::Code(code) = expect
            && *code != 0
        {
            assert!(
                said.any(|said| said == code),
                "code {code} unsaid\n{}",
                context()
            );
        }
    }
});
