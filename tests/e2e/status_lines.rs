//! Our lines read the same whatever the guest did: each starts on a line of
//! its own, even after output that did not end its line; one word, `ok`, for
//! a good end however the language ends a program; and `--help` shows what
//! ENTRY may be and how to start.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::guests::{command, print_then_exit};
use crate::support::{Dir, WAIT, live_wasm, live_wasm_on_terminal, once};

/// `text` without its colours (`ESC [ ... m`).
fn plain(text: &str) -> String {
    let mut plain = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\x1b[") {
        plain.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after.find('m').map_or(after.len(), |end| end + 1);
        rest = &after[end..];
    }
    plain.push_str(rest);
    plain
}

/// A command that writes `text` to `fd` (1 or 2), then does `then`.
fn writes_to(fd: u32, text: &str, then: &str) -> String {
    command(text, "", then).replace(
        "(call $fd_write (i32.const 1)",
        &format!("(call $fd_write (i32.const {fd})"),
    )
}

#[test]
fn a_status_line_starts_its_own_line_after_output_left_open_on_a_terminal() {
    let dir = Dir::new();
    dir.write("main.wat", &command("Hello from LIVE-wasm1!", "", ""));
    let session = live_wasm_on_terminal(&dir, &["main.wat"]);
    let screen = session.expect_screen("run #1", |screen| plain(screen).contains("#1 start"));
    assert!(
        plain(&screen).contains("Hello from LIVE-wasm1!\n[live-wasm] #1 start: ok"),
        "{screen:?}"
    );
    // After a whole line, no blank line.
    dir.write_rename("main.wat", &command("Hello again\n", "", ""));
    let screen = session.expect_screen("run #2", |screen| plain(screen).contains("#2 main.wat"));
    assert!(
        plain(&screen).contains("\nHello again\n[live-wasm] #2 main.wat changed: ok"),
        "{screen:?}"
    );
}

#[test]
fn a_status_line_starts_its_own_line_after_output_left_open_on_a_pipe() {
    let dir = Dir::new();
    // The guest's stderr is ours: the line it left open is under ours.
    dir.write("err.wat", &writes_to(2, "partial", "(unreachable)"));
    let (code, _, stderr) = once(&dir, &["err.wat"]);
    assert_eq!(code, 134);
    assert!(
        stderr.starts_with("partial\n[live-wasm] trap: wasm `unreachable`"),
        "{stderr:?}"
    );
    // Its stdout goes elsewhere: nothing to end on ours.
    dir.write("out.wat", &writes_to(1, "partial", "(unreachable)"));
    let (_, stdout, stderr) = once(&dir, &["out.wat"]);
    assert_eq!(stdout, "partial");
    assert!(stderr.starts_with("[live-wasm] trap: "), "{stderr:?}");
    // ... unless both go to one pipe (`2>&1`).
    assert!(
        joined(&dir, &["--once", "out.wat"]).starts_with("partial\n[live-wasm] trap: "),
        "joined"
    );
    // JSON events on stderr start their own lines too.
    dir.write("ok.wat", &writes_to(2, "partial", ""));
    let (code, _, stderr) = once(&dir, &["--events", "json", "ok.wat"]);
    assert_eq!(code, 0);
    let (guest, events): (Vec<&str>, Vec<&str>) = stderr
        .lines()
        .partition(|line| serde_json::from_str::<Value>(line).is_err());
    assert_eq!((guest, events.len()), (vec!["partial"], 3), "{stderr:?}");
}

/// `live-wasm ARGS` with its stdout and stderr one pipe: what came through it.
fn joined(dir: &Dir, args: &[&str]) -> String {
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    let mut command = dir.command();
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer.try_clone().expect("dup pipe"))
        .stderr(writer);
    let mut child = command.spawn().expect("start live-wasm");
    drop(command);
    let deadline = Instant::now() + WAIT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("live-wasm {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut text = String::new();
    reader.read_to_string(&mut text).expect("read the pipe");
    text
}

#[test]
fn a_zero_exit_is_ok_in_the_status_line_and_the_events() {
    let dir = Dir::new();
    // As Go's and Zig's runtimes end a program: `proc_exit(0)`.
    dir.write("main.wat", &print_then_exit("leaving", 0));
    let mut live = live_wasm(&dir, &["main.wat"]);
    live.expect_stdout("leaving");
    live.expect_run(1, "start: ok · ");
    drop(live);
    let (code, _, stderr) = once(&dir, &["--events", "json", "main.wat"]);
    assert_eq!(code, 0);
    let finished: Value = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|event| event["event"] == "run-finished")
        .unwrap_or_else(|| panic!("no run-finished: {stderr}"));
    assert_eq!(
        (&finished["outcome"], &finished["exit_code"]),
        (&"ok".into(), &0.into())
    );
    dir.write("main.wat", &print_then_exit("leaving", 3));
    let (code, _, stderr) = once(&dir, &["main.wat"]);
    assert_eq!((code, stderr.as_str()), (3, "[live-wasm] exit 3\n"));
}

#[test]
fn help_says_entry_may_be_a_component_and_shows_how_to_start() {
    for flag in ["--help", "-h"] {
        let dir = Dir::new();
        let output = dir.command().arg(flag).output().expect("live-wasm --help");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{help}");
        assert!(
            help.contains("a core module or component (`.wat` or `.wasm`)"),
            "{help}"
        );
        let examples: Vec<&str> = help
            .lines()
            .skip_while(|line| *line != "Examples:")
            .filter(|line| line.starts_with("  live-wasm "))
            .collect();
        assert_eq!(examples.len(), 4, "{help}");
        assert!(examples[0].ends_with(".wat"), "{examples:?}");
        assert!(examples[1].contains("--build"), "{examples:?}");
        assert!(examples[2].contains("--interpreter"), "{examples:?}");
        assert!(examples[3].contains("--serve"), "{examples:?}");
    }
}
