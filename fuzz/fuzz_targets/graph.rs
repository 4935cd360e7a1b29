//! Module-graph linking on generated module sets: `wasm-smith` makes valid
//! modules whose imports come from a small set of module names (present,
//! missing, cycles back to the entry, `..`, absolute, a symlink out of the
//! root, a name too long for the file system, the host's namespaces), and
//! whose exports are, or are not, what those imports ask for. Each module is
//! laid as `NAME.wat` (printed) or `NAME.wasm`; `main` is the entry. The run
//! is done twice: the second must be served by the compile cache and end the
//! same way.
//!
//! Invariants, besides those every run keeps (`live_wasm_fuzz::Run::check`):
//! - every module loaded is one we laid, under the file `N` resolves to
//!   (`N.wat`, else `N.wasm`);
//! - a module laid as text that the `wat` crate parses is never called a
//!   syntax error;
//! - a re-run of unchanged files tells the same story and compiles nothing.
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use live_wasm_fuzz::{ESCAPES, Harness, ProblemKind};

static WAT: LazyLock<Harness> = LazyLock::new(|| Harness::new("main.wat").expect("harness"));
static WASM: LazyLock<Harness> = LazyLock::new(|| Harness::new("main.wasm").expect("harness"));

/// The names a module file may have: the entry first.
const FILES: &[&str] = &["main", "a", "b", "lib/c", "ü"];

/// What generated modules may import from each name.
const ITEMS: &str = r#"
    (import "{}" "f" (func))
    (import "{}" "g" (func (param i32) (result i32)))
    (import "{}" "memory" (memory 0))
    (import "{}" "x" (global i32))
    (import "{}" "t" (table 0 funcref))
"#;

/// What a module exports when it is made to fit its importers.
const EXPORTS: &str = r#"(module
    (func (export "_start"))
    (func (export "f"))
    (func (export "g") (param i32) (result i32) local.get 0)
    (memory (export "memory") 1)
    (global (export "x") i32 (i32.const 0))
    (table (export "t") 1 funcref))"#;

fn import_names() -> Vec<String> {
    let mut names: Vec<String> = FILES.iter().map(|name| name.to_string()).collect();
    names.extend(ESCAPES.iter().map(|name| name.to_string()));
    for name in ["missing", "../a", "/abs", "a/", "lib//c", "./a", ""] {
        names.push(name.to_owned());
    }
    names.push("l".repeat(300));
    names
}

fn available_imports() -> Vec<u8> {
    let mut text = String::from("(module\n");
    for name in import_names() {
        text.push_str(&ITEMS.replace("{}", &name));
    }
    text.push_str(
        r#"
        (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
        (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
        (import "live" "use" (func (param i32 i32) (result i32)))
        (import "live" "nothing" (func))
        (import "wasi_unstable" "sched_yield" (func (result i32)))
    )"#,
    );
    wat::parse_str(&text).expect("the imports module")
}

static IMPORTS: LazyLock<Vec<u8>> = LazyLock::new(available_imports);
static FITTING: LazyLock<Vec<u8>> = LazyLock::new(|| wat::parse_str(EXPORTS).expect("exports"));

fn config(u: &mut Unstructured<'_>) -> Result<wasm_smith::Config> {
    let mut config = wasm_smith::Config {
        available_imports: Some(IMPORTS.clone()),
        exports: u.arbitrary::<bool>()?.then(|| FITTING.clone()),
        max_imports: 8,
        max_funcs: 8,
        max_exports: 8,
        max_instructions: 40,
        max_data_segments: 4,
        max_element_segments: 4,
        max_memories: 2,
        max_tables: 2,
        max_memory32_bytes: 4 << 20,
        max_table_elements: 1000,
        threads_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        memory64_enabled: false,
        custom_page_sizes_enabled: false,
        ..Default::default()
    };
    config.allow_start_export = u.arbitrary()?;
    Ok(config)
}

fn files(u: &mut Unstructured<'_>) -> Result<(bool, BTreeMap<String, Vec<u8>>)> {
    let entry_wat: bool = u.arbitrary()?;
    let mut files = BTreeMap::new();
    let count = u.int_in_range(1..=4)?;
    for index in 0..count {
        let name = match index {
            0 => "main",
            _ => *u.choose(FILES)?,
        };
        let module = wasm_smith::Module::new(config(u)?, u)?.to_bytes();
        let text = if name == "main" {
            entry_wat
        } else {
            u.arbitrary()?
        };
        let (file, bytes) = match text {
            true => match wasmprinter::print_bytes(&module) {
                Ok(text) => (format!("{name}.wat"), text.into_bytes()),
                Err(_) => continue,
            },
            false => (format!("{name}.wasm"), module),
        };
        files.insert(file, bytes);
    }
    Ok((entry_wat, files))
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((entry_wat, files)) = files(&mut u) else {
        return;
    };
    let harness = if entry_wat { &*WAT } else { &*WASM };
    let laid: Vec<(String, Vec<u8>)> = files.clone().into_iter().collect();
    let run = harness.run(&laid);

    for loaded in &run.loaded {
        let wat = format!("{}.wat", loaded.module);
        let wasm = format!("{}.wasm", loaded.module);
        let expected = if loaded.module == "main" {
            if entry_wat { wat } else { wasm }
        } else if files.contains_key(&wat) {
            wat
        } else {
            wasm
        };
        assert_eq!(
            loaded.file, expected,
            "module {} resolved to another file",
            loaded.module
        );
        assert!(
            files.contains_key(&loaded.file),
            "loaded {}, which was not laid",
            loaded.file
        );
    }
    for problem in run.problems() {
        if problem.kind != ProblemKind::Syntax {
            continue;
        }
        let Some(text) = problem.file.as_ref().and_then(|file| files.get(file)) else {
            continue;
        };
        assert!(
            wat::parse_bytes(text).is_err(),
            "text the wat crate parses: {problem:?}"
        );
    }

    let again = harness.rerun();
    if let Err(err) = again.check_same_as(&run) {
        panic!("{err:#}");
    }
});
