//! What takes long says so: on a terminal, one line naming the build or the
//! compile and how long it has been going on, erased when it ends; for tools,
//! `progress` events. Nothing more when stderr is not a terminal, or under
//! `--quiet`, and nothing at all for what is over in half a second.

use serde_json::Value;

use crate::guests::{command, print};
use crate::support::{Dir, live_wasm_on_terminal, once, once_on_terminal};

/// The progress line's erase: back to the start of the line, erase it.
const ERASE: &str = "\r\x1b[2K";

/// What a terminal shows of `text`, line by line, as far as our lines go:
/// `\r` goes back to the start of the line, `ESC[2K` erases it and `ESC[K`
/// the rest of it, colours show nothing; the last line, if empty, is left out.
fn rendered(text: &str) -> Vec<String> {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let mut col = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let line = lines.last_mut().expect("a line");
        match c {
            '\n' => {
                lines.push(Vec::new());
                col = 0;
            }
            '\r' => col = 0,
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut parameters = String::new();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        match (c, parameters.as_str()) {
                            ('K', "2") => line.clear(),
                            ('K', "" | "0") => line.truncate(col),
                            _ => {}
                        }
                        break;
                    }
                    parameters.push(c);
                }
            }
            c => {
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.resize(col, ' ');
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    if lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|line| line.into_iter().collect())
        .collect()
}

/// A WASI command that prints `line`, with `functions` more functions for
/// the compiler to chew on (about 0.7 KB of wasm each).
fn big_command(line: &str, functions: usize) -> String {
    let mut more = String::from(")\n");
    for f in 0..functions {
        more.push_str(&format!("  (func $f{f} (param i32) (result i32)\n"));
        for s in 0..20 {
            more.push_str(&format!(
                "    (local.set 0 (i32.add (i32.mul (local.get 0) (i32.const {})) (i32.const {s})))\n",
                f + s
            ));
        }
        more.push_str("    (local.get 0))\n");
    }
    // The template closes the last function and the module.
    more.push_str("  (func $last");
    command(&format!("{line}\n"), "", &more)
}

/// The events in the file at `path`.
fn events_in(dir: &Dir, name: &str) -> Vec<Value> {
    dir.read(name)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The `progress` events of `stage` among `events`.
fn progress_of<'a>(events: &'a [Value], stage: &str) -> Vec<&'a Value> {
    (events.iter())
        .filter(|event| event["event"] == "progress" && event["stage"] == stage)
        .collect()
}

#[test]
fn a_slow_build_says_so_on_a_terminal_until_the_status_line_takes_its_place() {
    let dir = Dir::new();
    dir.write("delay.txt", "2");
    dir.write("src.wat", &print("built"));
    let build = "echo starting the build; sleep $(cat delay.txt); cp src.wat main.wat";
    let session = live_wasm_on_terminal(&dir, &["--build", build, "main.wat"]);
    let screen = session.expect_screen("the first run", |screen| screen.contains("#1 start: ok"));

    // The line came once the build had been quiet for half a second, moved,
    // and was erased before the guest's output.
    let text = session.text();
    let said = text
        .find("starting the build")
        .expect("the build's own line");
    let first =
        (text.find("building (sleep) ")).unwrap_or_else(|| panic!("no progress line in {text:?}"));
    let waited = session
        .received_at(first)
        .duration_since(session.received_at(said));
    assert!(
        waited >= std::time::Duration::from_millis(400),
        "shown {waited:?} after the build's line"
    );
    let mut drawn: Vec<&str> = (text.match_indices("building (sleep) "))
        .filter_map(|(at, _)| text[at..].split(" s").next())
        .collect();
    drawn.dedup();
    assert!(drawn.len() >= 2, "the line did not move: {drawn:?}");
    let last = text.rfind("building (sleep) ").expect("the progress line");
    assert!(
        text[last..].contains(&format!("{ERASE}built\n")),
        "{:?}",
        &text[last..]
    );
    let lines = rendered(&screen);
    assert_eq!(lines[..2], ["starting the build", "built"], "{text:?}");
    assert!(
        lines[2].starts_with("[live-wasm] #1 start: ok · build 2."),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 3, "{lines:?}");

    // A fast build: nothing more than its line, the output and the status line.
    let before = session.text().len();
    dir.write("delay.txt", "0");
    session.expect_screen("the second run", |screen| {
        screen.contains("#2 delay.txt changed: ok")
    });
    let text = session.text();
    let since = &text[before..];
    assert!(!since.contains("building ("), "{since:?}");
    assert!(!since.contains(ERASE), "{since:?}");
}

#[test]
fn a_slow_compile_says_what_how_big_and_for_how_long_then_goes() {
    let dir = Dir::new();
    // Big enough to take over a second to compile here; bigger if this
    // machine compiles it faster than the line could show.
    let mut functions = 2000;
    loop {
        dir.write("main.wat", &big_command("compiled", functions));
        let (code, stdout, stderr) =
            once_on_terminal(&dir, &["--events-file", "events.jsonl", "main.wat"]);
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        assert_eq!(code, 0, "{stderr:?}");
        assert_eq!(String::from_utf8_lossy(&stdout), "compiled\r\n");
        let events = events_in(&dir, "events.jsonl");
        let compiled = (events.iter())
            .find(|event| event["event"] == "compiled")
            .expect("a compiled event");
        let progress = progress_of(&events, "compile");
        if progress.is_empty() && functions < 16_000 {
            functions *= 2;
            continue;
        }
        let line = "compiling main.wat ";
        let first = stderr
            .find(line)
            .unwrap_or_else(|| panic!("no progress line in {stderr:?}"));
        assert!(
            stderr[first..].contains(" MB (first time; cached after) "),
            "{stderr:?}"
        );
        // Erased: nothing is left of it.
        assert!(stderr.ends_with(ERASE), "{stderr:?}");
        assert_eq!(rendered(&stderr), Vec::<String>::new(), "{stderr:?}");

        // Its events, before the compile's own.
        assert!(!progress.is_empty(), "{events:#?}");
        let wasm_bytes = progress[0]["bytes"].as_u64().expect("bytes");
        assert!(wasm_bytes > 1_000_000, "{wasm_bytes}");
        assert_eq!(progress[0]["what"], "main.wat");
        assert_eq!(progress[0]["run"], 1);
        assert!(
            progress[0]["elapsed_ms"]
                .as_f64()
                .is_some_and(|ms| ms >= 500.0)
        );
        let at = |event: &Value| events.iter().position(|e| e == event);
        assert!(
            at(progress[progress.len() - 1]) < at(compiled),
            "{events:#?}"
        );

        // The next session loads it from the disk cache: nothing to say.
        let (code, _, stderr) = once_on_terminal(&dir, &["main.wat"]);
        assert_eq!((code, String::from_utf8_lossy(&stderr).as_ref()), (0, ""));
        return;
    }
}

#[test]
fn no_progress_line_when_stderr_is_not_a_terminal_or_under_quiet() {
    let dir = Dir::new();
    dir.write("big.wat", &big_command("compiled", 2000));
    let build = "sleep 1; cp big.wat main.wat";
    let args = [
        "--events-file",
        "events.jsonl",
        "--build",
        build,
        "main.wat",
    ];
    let (code, stdout, stderr) = once(&dir, &args);
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (0, "compiled\n", "")
    );
    // It took long enough to be said: in the events.
    let events = events_in(&dir, "events.jsonl");
    let build_progress = progress_of(&events, "build");
    assert!(!build_progress.is_empty(), "{events:#?}");
    assert_eq!(build_progress[0]["what"], "sleep");
    assert_eq!(build_progress[0]["bytes"], Value::Null);

    // On a terminal, under --quiet: nothing either.
    std::fs::remove_file(dir.path("main.wat")).expect("remove main.wat");
    let mut quiet = vec!["--quiet"];
    quiet.extend(args);
    let (code, stdout, stderr) = once_on_terminal(&dir, &quiet);
    let stderr = String::from_utf8_lossy(&stderr);
    assert_eq!((code, stderr.as_ref()), (0, ""));
    assert_eq!(String::from_utf8_lossy(&stdout), "compiled\r\n");
    // The events are for tools, and still given.
    let events = events_in(&dir, "events.jsonl");
    assert!(!progress_of(&events, "build").is_empty(), "{events:#?}");
}

#[test]
fn progress_events_come_between_a_slow_build_starting_and_ending() {
    let dir = Dir::new();
    dir.write("src.wat", &print("built"));
    let build = "sleep 2.2; cp src.wat main.wat";
    let (code, stdout, stderr) = once(&dir, &["--events", "json", "--build", build, "main.wat"]);
    assert_eq!((code, stdout.as_str()), (0, "built\n"), "{stderr}");
    let events: Vec<Value> = (stderr.lines())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let names: Vec<&str> = (events.iter())
        .map(|event| event["event"].as_str().unwrap_or_default())
        .collect();
    let progress: Vec<&Value> = progress_of(&events, "build");
    // At half a second and at 1.5 s (a third only if the end came late).
    assert!(
        (2..=3).contains(&progress.len()),
        "one at half a second, then one a second after: {names:?}"
    );
    assert_eq!(names[0], "build-started");
    assert_eq!(names[1..=progress.len()], vec!["progress"; progress.len()]);
    assert_eq!(names[progress.len() + 1], "build-finished");
    let elapsed: Vec<f64> = (progress.iter())
        .map(|event| event["elapsed_ms"].as_f64().expect("elapsed_ms"))
        .collect();
    assert!(elapsed[0] >= 500.0 && elapsed[1] >= 1_500.0, "{elapsed:?}");
    for event in progress {
        assert_eq!(event["run"], 1);
        assert_eq!(event["what"], "sleep");
    }
}
