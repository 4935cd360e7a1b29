//! Interpreted languages live: the Python and JavaScript examples run by the
//! real interpreters compiled to WebAssembly (`guest-examples/*/fetch` puts
//! them there), with `--interpreter`, edited the ways a person edits.
//!
//! A test whose interpreter is missing is skipped with the reason printed, and
//! fails when `CI=true` (`.ci/install-guests` fetches them there).

use std::path::PathBuf;
use std::time::Duration;

use crate::examples::{copy_example, examples, start_args};
use crate::guests::print;
use crate::support::{Dir, Stream, live_wasm, once, skip_example};

/// The first run compiles the interpreter (CPython: 26 MB, 5-17 s here, more
/// on a busy machine).
const COMPILE_WAIT: Duration = Duration::from_secs(240);

/// One example and the edits a test makes to it.
struct Script {
    /// Its folder under `guest-examples/`, which `fetch` puts the interpreter in.
    folder: &'static str,
    interpreter: &'static str,
    /// The script run, and the module it imports.
    main: &'static str,
    module: &'static str,
    /// The first line it prints, found in `module`.
    hello: &'static str,
    /// A line of `main` that prints `more`.
    more: &'static str,
    /// Text the interpreter refuses, and what its error says.
    broken: &'static str,
    error: &'static str,
    /// Appended to `module`: a function `boom` that throws; to `main`: a call
    /// of it.
    boom: &'static str,
    call_boom: &'static str,
    /// How the interpreter's error names a file at `{}` (its path): each of
    /// `main` and `module` is named so.
    named: &'static str,
}

#[test]
fn python() {
    live_script(&Script {
        folder: "python",
        interpreter: "python.wasm",
        main: "main.py",
        module: "helper.py",
        hello: "Hello from",
        more: "print(\"more\")\n",
        broken: "def broken(:\n",
        error: "SyntaxError",
        boom: "\ndef boom():\n    raise ValueError(\"boom\")\n",
        call_boom: "helper.boom()\n",
        named: "File \"{}\", line ",
    });
}

#[test]
fn javascript() {
    live_script(&Script {
        folder: "javascript",
        interpreter: "quickjs.wasm",
        main: "main.js",
        module: "helper.js",
        hello: "Hello from",
        more: "console.log(\"more\");\n",
        broken: "export function broken( {\n",
        error: "SyntaxError",
        boom: "\nexport function boom() {\n  throw new Error(\"boom\");\n}\n",
        call_boom: "import { boom } from \"./helper.js\";\nboom();\n",
        named: "({}:",
    });
}

#[test]
fn every_interpreted_example_has_a_readme_with_its_start_command() {
    for (folder, interpreter) in [("python", "python.wasm"), ("javascript", "quickjs.wasm")] {
        let path = examples().join(folder).join("README.md");
        let readme = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let start = format!("./fetch && live-wasm --interpreter {interpreter} main.");
        assert!(
            readme.contains(&start),
            "{} gives no start command",
            path.display()
        );
        assert!(
            examples().join(folder).join("fetch").is_file(),
            "{folder}/fetch"
        );
    }
}

/// Start, edit the imported module, edit the script, break the module, fix it;
/// then a second session starts from the disk cache.
fn live_script(script: &Script) {
    // As the README starts it, the interpreter it fetched where it is.
    let readme = start_args(script.folder);
    assert_eq!(
        readme,
        ["--interpreter", script.interpreter, script.main],
        "{}'s README",
        script.folder
    );
    let Some(interpreter) = interpreter(script) else {
        return;
    };
    let interpreter = interpreter.to_string_lossy().into_owned();
    let dir = Dir::new();
    copy_example(script.folder, dir.root());
    let args = ["--interpreter", &interpreter, script.main];
    let mut live = live_wasm(&dir, &args);
    live.set_wait(COMPILE_WAIT);
    live.expect(Stream::Out, |line| line.starts_with(script.hello));
    live.expect_stdout("fib(30) = 832040");
    live.expect_run(1, "start: ok");
    live.set_wait(crate::support::WAIT);

    let module = dir.read(script.module);
    dir.write(script.module, &module.replace(script.hello, "Hi from"));
    live.expect(Stream::Out, |line| line.starts_with("Hi from"));
    live.expect_run(2, &format!("{} changed: ok", script.module));

    let main = dir.read(script.main);
    dir.write_rename(script.main, &format!("{main}{}", script.more));
    live.expect_stdout("more");
    live.expect_run(3, &format!("{} changed: ok", script.main));

    dir.write(script.module, &format!("{module}{}", script.broken));
    live.expect(Stream::Err, |line| line.contains(script.error));
    live.expect_run(4, &format!("{} changed: exit 1", script.module));

    dir.delete_recreate(script.module, &module);
    live.expect(Stream::Out, |line| line.starts_with(script.hello));
    live.expect_run(5, &format!("{} changed: ok", script.module));
    drop(live);

    // A new session: the interpreter comes compiled from the disk cache.
    let mut all = vec!["--events", "json"];
    all.extend(args);
    let (code, stdout, stderr) = once(&dir, &all);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("more"), "{stdout}");
    assert!(
        stderr.contains(r#""cache":"hit","event":"compiled""#),
        "not from the cache: {stderr}"
    );

    // Issue 27: an error names the script and its module by their paths, as
    // the interpreter run natively does (CPython said `//main.py`).
    dir.write(script.module, &format!("{module}{}", script.boom));
    dir.write(script.main, &format!("{main}{}", script.call_boom));
    let (code, _, stderr) = once(&dir, &args);
    assert_eq!(code, 1, "{stderr}");
    let folder = dir.root().canonicalize().expect("the folder");
    for file in [script.main, script.module] {
        let path = folder.join(file);
        let named = script.named.replace("{}", &path.display().to_string());
        assert!(stderr.contains(&named), "{named:?} not in {stderr}");
    }
    assert!(!stderr.contains("//"), "{stderr}");
}

/// Issue 27: a script that does not exist is waited for, as a missing entry
/// is (an interpreter of our own stands in: the script is its first argument).
#[test]
fn a_missing_script_is_waited_for() {
    let dir = Dir::new();
    dir.write("interpreter.wat", &print("interpreted"));
    let mut live = live_wasm(&dir, &["--interpreter", "interpreter.wat", "main.py"]);
    live.expect_status("main.py does not exist yet; waiting for it to be created");
    dir.write("main.py", "print('hi')\n");
    live.expect_stdout("interpreted");
    live.expect_run(1, "main.py changed: ok");
}

/// ... and with `--once` it fails at once, before the interpreter is compiled
/// (CPython's takes seconds), with the status a missing entry has.
#[test]
fn a_missing_script_fails_once_before_the_interpreter_is_compiled() {
    let dir = Dir::new();
    dir.write("interpreter.wat", &print("interpreted"));
    let (code, stdout, stderr) = once(
        &dir,
        &[
            "--events",
            "json",
            "--interpreter",
            "interpreter.wat",
            "nosuch.py",
        ],
    );
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert!(!stderr.contains(r#""event":"compiled""#), "{stderr}");
    assert!(
        stderr.contains(
            r#""event":"error","file":"nosuch.py","kind":"not-found","line":null,"message":"nosuch.py: file not found (the script --interpreter runs)""#
        ),
        "{stderr}"
    );
    let (missing_entry, _, _) = once(&dir, &["nosuch.wat"]);
    assert_eq!(code, missing_entry);
}

/// The example's interpreter, or `None` (the skip said) when it was not
/// fetched and this is not CI.
fn interpreter(script: &Script) -> Option<PathBuf> {
    let path = examples().join(script.folder).join(script.interpreter);
    if path.is_file() {
        return Some(path);
    }
    let missing = format!(
        "{} is missing: run guest-examples/{}/fetch",
        path.display(),
        script.folder
    );
    skip_example(script.folder, &missing);
    None
}
