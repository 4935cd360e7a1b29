//! The load path on arbitrary bytes: the first byte chooses whether the rest is
//! the entry `main.wat` or `main.wasm`; the entry is run once (twice: the
//! second run must be served by the compile cache and end the same way).
//!
//! Invariants, besides those every run keeps (`live_wasm_fuzz::Run::check`):
//! - `.wat`: text the `wat` crate cannot parse is an error; text it parses is
//!   never called a syntax error (our parse adds DWARF line tables), and a
//!   module that also validates is never called a validation error;
//! - `.wasm`: bytes without the `\0asm` magic, or that `wasmparser` rejects,
//!   are an error, and never crash or run.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use live_wasm_fuzz::{Harness, ProblemKind, Run};

static WAT: LazyLock<Harness> = LazyLock::new(|| Harness::new("main.wat").expect("harness"));
static WASM: LazyLock<Harness> = LazyLock::new(|| Harness::new("main.wasm").expect("harness"));

fuzz_target!(|data: &[u8]| {
    let Some((&choice, bytes)) = data.split_first() else {
        return;
    };
    let as_wat = choice & 1 == 0;
    let (harness, name) = match as_wat {
        true => (&*WAT, "main.wat"),
        false => (&*WASM, "main.wasm"),
    };
    let run = harness.run(&[(name.to_owned(), bytes.to_vec())]);
    if as_wat {
        check_wat(&run, bytes);
    } else {
        check_wasm(&run, bytes);
    }
    let again = harness.rerun();
    if let Err(err) = again.check_same_as(&run) {
        panic!("{err:#}");
    }
});

fn entry_problem(run: &Run) -> Option<ProblemKind> {
    run.error
        .as_ref()
        .filter(|problem| problem.file.as_deref() == Some("main.wat"))
        .map(|problem| problem.kind)
}

fn check_wat(run: &Run, bytes: &[u8]) {
    match wat::parse_bytes(bytes) {
        Err(_) => assert_eq!(run.outcome, "error", "text the wat crate refuses ran"),
        Ok(wasm) => {
            let kind = entry_problem(run);
            assert_ne!(
                kind,
                Some(ProblemKind::Syntax),
                "text the wat crate parses: {:?}",
                run.error
            );
            if wasmparser::Validator::new().validate_all(&wasm).is_ok() {
                assert_ne!(
                    kind,
                    Some(ProblemKind::Validation),
                    "a valid module: {:?}",
                    run.error
                );
            }
        }
    }
}

fn check_wasm(run: &Run, bytes: &[u8]) {
    let refused =
        !bytes.starts_with(b"\0asm") || wasmparser::Validator::new().validate_all(bytes).is_err();
    if refused {
        assert_eq!(run.outcome, "error", "bytes wasmparser refuses ran");
    }
}
