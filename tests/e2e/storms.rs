//! Save storms: saves far faster than runs, while the guest spins. Whatever
//! runs in between, the last save's content runs last, and nothing after it.

use std::time::Duration;

use crate::guests::{print, print_then_loop};
use crate::support::{Dir, live_wasm};

fn storm_then_check(watcher: &[&str]) {
    const SAVES: usize = 200;
    let dir = Dir::new();
    dir.write("main.wat", &print_then_loop("v0"));
    let mut args = watcher.to_vec();
    args.push("main.wat");
    let mut live = live_wasm(&dir, &args);
    live.expect_stdout("v0");

    // 200 saves in about a second, in the three ways editors save.
    for save in 1..=SAVES {
        let text = print_then_loop(&format!("v{save}"));
        match save % 3 {
            0 => dir.write("main.wat", &text),
            1 => dir.write_rename("main.wat", &text),
            _ => dir.delete_recreate("main.wat", &text),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let last = format!("v{SAVES}");
    live.expect_stdout(&last);
    // One more save, to see what ran between the storm's last one and it.
    dir.write_rename("main.wat", &print("after the storm"));
    live.expect_stdout("after the storm");

    let seen = live.stdout_seen();
    let at = |text: &str| seen.iter().rposition(|line| line == text);
    let (last_at, after_at) = (
        at(&last).expect("seen"),
        at("after the storm").expect("seen"),
    );
    assert_eq!(
        after_at,
        last_at + 1,
        "the storm's last save ran last: {seen:?}"
    );
    // Versions ran in the order saved.
    let versions: Vec<usize> = seen
        .iter()
        .filter_map(|line| line.strip_prefix('v')?.parse().ok())
        .collect();
    assert!(versions.is_sorted(), "{versions:?}");
}

#[test]
fn the_last_save_of_a_storm_runs_last() {
    storm_then_check(&[]);
}

#[test]
fn the_last_save_of_a_storm_runs_last_when_polling() {
    storm_then_check(&["--poll=20ms"]);
}
