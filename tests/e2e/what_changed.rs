//! Each save says what changed: `--diff` compares a run's output with the
//! previous run's; `--clear` keeps the last output in view until a new run
//! has something to show, and shows it again, stale, under a failed save.

use crate::guests::{command, print, print_then_exit};
use crate::support::{CLEAR, Dir, LiveWasm, Stream, live_wasm, live_wasm_on_terminal};

/// `line 1` to `line N`, one per line; line `changed` reads otherwise.
fn numbered(lines: usize, changed: Option<usize>) -> String {
    (1..=lines)
        .map(|n| match changed {
            Some(c) if c == n => format!("line {n} changed\n"),
            _ => format!("line {n}\n"),
        })
        .collect()
}

/// The next `count` lines of stderr after the last one read.
fn next_lines(session: &mut LiveWasm, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| session.expect(Stream::Err, |_| true))
        .collect()
}

#[test]
fn diff_marks_exactly_the_changed_line_of_a_thousand() {
    let dir = Dir::new();
    dir.write("main.wat", &command(&numbered(1000, None), "", ""));
    let mut session = live_wasm(&dir, &["--diff", "main.wat"]);
    session.expect_run(1, "start: ok");

    dir.write("main.wat", &command(&numbered(1000, Some(500)), "", ""));
    session.expect_stdout("line 500 changed");
    let status = session.expect_run(2, "main.wat changed: ok");
    assert!(status.contains(" · stdout +1 -1 against #1 · "), "{status}");
    assert_eq!(
        next_lines(&mut session, 8),
        [
            "  ⋯ 497 unchanged lines",
            "    line 498",
            "    line 499",
            "  - line 500",
            "  + line 500 changed",
            "    line 501",
            "    line 502",
            "  ⋯ 498 unchanged lines",
        ]
    );

    // The same output from other code: said in a word, no lines.
    dir.write(
        "main.wat",
        &command(&numbered(1000, Some(500)), "(nop)", ""),
    );
    let status = session.expect_run(3, "main.wat changed: ok · output unchanged · ");
    assert!(!status.contains("against"), "{status}");
}

#[test]
fn diff_compares_how_runs_end_and_says_it_in_events() {
    let dir = Dir::new();
    let events = dir.path("events.jsonl");
    let events_arg = events.to_str().expect("utf-8 path");
    dir.write("main.wat", &print("same"));
    let mut session = live_wasm(&dir, &["--diff", "--events-file", events_arg, "main.wat"]);
    session.expect_run(1, "start: ok");
    dir.write("main.wat", &print_then_exit("same", 3));
    session.expect_run(2, "main.wat changed: exit 3 (#1 ok) · output unchanged");

    let diff = std::fs::read_to_string(&events)
        .expect("events")
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON"))
        .find(|event| event["event"] == "diff")
        .expect("a diff event");
    assert_eq!(diff["run"], 2);
    assert_eq!(diff["against"], 1);
    assert_eq!(diff["output_unchanged"], true);
    assert_eq!(diff["ended_before"], "ok");
    assert_eq!(diff["stdout"]["added"], 0);
}

#[test]
fn diff_only_shows_the_difference_instead_of_the_output() {
    let dir = Dir::new();
    dir.write("main.wat", &command("one\ntwo\nthree\n", "", ""));
    let mut session = live_wasm(&dir, &["--diff=only", "main.wat"]);
    // The first run has nothing to compare with: its output in full.
    session.expect_stdout("three");
    session.expect_run(1, "start: ok");

    dir.write("main.wat", &command("one\n2\nthree\n", "", ""));
    session.expect_run(2, "main.wat changed: ok · stdout +1 -1 against #1");
    assert_eq!(
        next_lines(&mut session, 4),
        ["    one", "  - two", "  + 2", "    three"]
    );
    session.ctrl_c();
    session.wait_exit();
    session.read_to_end();
    assert_eq!(session.stdout_seen(), ["one", "two", "three"]);
}

#[test]
fn quiet_diff_only_shows_the_changed_lines_alone() {
    let dir = Dir::new();
    dir.write("main.wat", &command("one\ntwo\n", "", ""));
    let mut session = live_wasm(&dir, &["--diff=only", "--quiet", "main.wat"]);
    session.expect_stdout("two");
    dir.write("main.wat", &command("one\n2\n", "", ""));
    let first = session.expect(Stream::Err, |_| true);
    assert_eq!(
        [first, session.expect(Stream::Err, |_| true)],
        ["    one", "  - two"]
    );
    session.expect(Stream::Err, |line| line == "  + 2");
    session.ctrl_c();
    session.wait_exit();
    session.read_to_end();
    let stderr: Vec<String> = (session.transcript().lines())
        .filter_map(|line| line.strip_prefix("  Err: ").map(str::to_owned))
        .collect();
    assert!(
        stderr.iter().all(|line| !line.starts_with("[live-wasm] #")),
        "{stderr:?}"
    );
}

#[test]
fn a_failed_save_under_clear_leaves_the_last_output_on_screen_marked_stale() {
    let dir = Dir::new();
    dir.write("main.wat", &command("alpha\nbeta\n", "", ""));
    let session = live_wasm_on_terminal(&dir, &["--clear", "main.wat"]);
    session.expect_screen("the first run", |screen| {
        screen.contains("alpha\nbeta\n") && screen.contains("#1 start: ok")
    });

    dir.write("main.wat", "(module (func");
    let screen = session.expect_screen("the error, then the stale output", |screen| {
        screen.contains("#2 main.wat changed: error") && screen.ends_with("alpha\nbeta\n")
    });
    let error = screen.find("#2 main.wat changed: error").expect("error");
    let stale = screen
        .find("stale: the output of #1")
        .expect("marked stale");
    let output = screen.find("alpha\nbeta").expect("the last output");
    assert!(error < stale && stale < output, "{screen:?}");

    dir.write("main.wat", &command("gamma\n", "", ""));
    let screen = session.expect_screen("the next good run", |screen| {
        screen.contains("#3 main.wat changed: ok")
    });
    assert!(screen.starts_with("gamma\n"), "{screen:?}");
    assert!(
        !screen.contains("stale") && !screen.contains("alpha"),
        "{screen:?}"
    );
}

#[test]
fn a_failed_build_under_clear_shows_its_error_then_the_last_output_stale() {
    let dir = Dir::new();
    dir.write("src.txt", &print("built v1"));
    let build = "if grep -q broken src.txt; then echo 'src.txt:1: error: broken' >&2; exit 1; fi; \
        mkdir -p out; cp src.txt out/main.wat";
    let session = live_wasm_on_terminal(&dir, &["--clear", "--build", build, "out/main.wat"]);
    session.expect_screen("the first run", |screen| {
        screen.contains("built v1\n") && screen.contains("#1 start: ok")
    });

    dir.write("src.txt", &format!("{} ;; broken", print("built v2")));
    let screen = session.expect_screen("the build's error, then the stale output", |screen| {
        screen.contains("#2 src.txt changed: build failed") && screen.ends_with("built v1\n")
    });
    let places = [
        "src.txt:1: error: broken",
        "#2 src.txt changed: build failed",
        "stale: the output of #1",
        "built v1",
    ]
    .map(|text| screen.find(text).unwrap_or(usize::MAX));
    assert!(places.is_sorted() && places[3] < usize::MAX, "{screen:?}");
}

#[test]
fn diff_on_a_terminal_colours_the_changed_lines() {
    let dir = Dir::new();
    dir.write("main.wat", &command("one\ntwo\n", "", ""));
    let session = live_wasm_on_terminal(&dir, &["--diff", "main.wat"]);
    session.expect_screen("the first run", |screen| screen.contains("#1 start: ok"));
    dir.write("main.wat", &command("one\n2\n", "", ""));
    let screen = session.expect_screen("the diff", |screen| screen.contains("+ 2"));
    assert!(
        screen.contains("\x1b[31m- two\x1b[0m") && screen.contains("\x1b[32m+ 2\x1b[0m"),
        "{screen:?}"
    );
}

#[test]
fn clear_waits_until_the_run_has_something_to_show() {
    let dir = Dir::new();
    dir.write("main.wat", &print("first"));
    let session = live_wasm_on_terminal(&dir, &["--clear", "main.wat"]);
    session.expect_screen("the first run", |screen| screen.contains("#1 start: ok"));

    // A run that shows nothing for two seconds: the screen keeps the last
    // output until its first line, and is cleared just before it.
    dir.write(
        "main.wat",
        &command("second\n", "(call $sleep (i64.const 2))", ""),
    );
    session.expect_screen("the second run", |screen| {
        screen.starts_with("second\n") && screen.contains("#2 main.wat changed: ok")
    });
    let bytes = session.bytes();
    let clear = (bytes.windows(CLEAR.len()))
        .rposition(|window| window == CLEAR.as_bytes())
        .expect("a clear");
    let cleared = session.received_at(clear);
    let shown = session.received_at(clear + CLEAR.len());
    assert!(
        shown.duration_since(cleared) < std::time::Duration::from_secs(1),
        "the screen was blank for {:?} before the run showed anything",
        shown.duration_since(cleared)
    );
}

#[test]
fn diff_keeps_hashes_past_its_text_budget_and_says_so() {
    // 4 MiB of text per stream is kept (4,100 lines of 1023 bytes); past it, a
    // changed line is known by its hash, and said to be not kept.
    let dir = Dir::new();
    let line = |c: &str| format!("{}\n", c.repeat(1023));
    let before = line("x").repeat(4104);
    let after = line("x").repeat(4103) + &line("y");
    dir.write("main.wat", &command(&before, "", ""));
    let mut session = live_wasm(&dir, &["--diff", "main.wat"]);
    session.expect_run(1, "start: ok");
    dir.write("main.wat", &command(&after, "", ""));
    session.expect_run(2, "main.wat changed: ok · stdout +1 -1 against #1");
    let not_kept = |n| format!("(line {n}: not kept, past the first 4 MiB of stdout)");
    assert_eq!(
        next_lines(&mut session, 5),
        [
            "  ⋯ 4101 unchanged lines".to_owned(),
            format!("    {}", not_kept(4102)),
            format!("    {}", not_kept(4103)),
            format!("  - {}", not_kept(4104)),
            format!("  + {}", not_kept(4104)),
        ]
    );
}
