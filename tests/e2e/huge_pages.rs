//! The binary moves its code onto huge pages at start (`src/huge_pages.rs`),
//! and runs from there; `LIVE_WASM_HUGE_PAGES=0` leaves it where it was.

use crate::guests::print;
use crate::support::{Dir, live_wasm_with_env};

/// KiB of huge pages in the executable mappings of process `pid`, and
/// whether our binary's file still backs one of them.
fn executable_mappings(pid: u32) -> (u64, bool) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("smaps");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
    let exe = exe.to_string_lossy();
    let (mut huge_kib, mut from_file, mut executable) = (0, false, false);
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .first()
            .is_some_and(|range| range.contains('-') && !range.ends_with(':'))
        {
            executable = fields.get(1).is_some_and(|perms| perms.contains('x'));
            from_file |= executable && fields.get(5).is_some_and(|path| *path == exe);
        } else if executable && fields.first() == Some(&"AnonHugePages:") {
            huge_kib += fields
                .get(1)
                .and_then(|kib| kib.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    (huge_kib, from_file)
}

fn huge_pages_available() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|modes| !modes.contains("[never]"))
}

#[test]
fn the_code_runs_from_huge_pages_unless_told_not_to() {
    if !huge_pages_available() {
        eprintln!("skipped: this system has no transparent huge pages");
        return;
    }
    for (setting, moved) in [("1", true), ("0", false)] {
        let dir = Dir::new();
        dir.write("main.wat", &print("first"));
        let env = [("LIVE_WASM_HUGE_PAGES".to_owned(), setting.to_owned())];
        let mut live = live_wasm_with_env(&dir, &env, &["main.wat"]);
        live.expect_stdout("first");
        // Compiling and running a new version goes through the moved code.
        dir.write("main.wat", &print("second"));
        live.expect_stdout("second");
        let (huge_kib, from_file) = executable_mappings(live.pid());
        if moved {
            assert!(
                huge_kib >= 2048,
                "LIVE_WASM_HUGE_PAGES={setting}: {huge_kib} KiB"
            );
        } else {
            assert_eq!(
                (huge_kib, from_file),
                (0, true),
                "LIVE_WASM_HUGE_PAGES={setting}"
            );
        }
    }
}
