//! `--build` watches its sources folder by folder: an ignored folder or a
//! build folder (`node_modules/`, `target/`) is neither watched nor walked,
//! and a folder made later is watched with its sources (issue 23, defect 13).

use crate::guest_files::watches;
use crate::guests::print;
use crate::support::{Dir, live_wasm};

/// "Compiles" `src.txt` into `out/main.wat` (a copy).
const BUILD: &str = "mkdir -p out; cp src.txt out/main.wat";

#[test]
fn defect_13_a_build_watches_no_ignored_or_build_folder() {
    for watcher in [&[][..], &["--poll=50ms"][..]] {
        let dir = Dir::new();
        dir.write("src.txt", &print("v1"));
        dir.write(".gitignore", "data/\n");
        for (folder, count) in [
            ("node_modules/p", 3000),
            ("target/t", 2000),
            ("data/d", 1000),
        ] {
            for n in 0..count {
                std::fs::create_dir_all(dir.path(&format!("{folder}{n}"))).expect("mkdir");
            }
        }
        std::fs::create_dir(dir.path("lib")).expect("mkdir lib");
        let mut args = vec!["--build", BUILD];
        args.extend(watcher);
        args.push("out/main.wat");
        let mut live = live_wasm(&dir, &args);
        live.expect_stdout("v1");
        live.expect_run(1, "start: ok · build ");
        if watcher.is_empty() {
            // Before: 5,004 and more (every folder of the tree).
            let held = watches(live.pid());
            eprintln!("defect 13: {held} watches");
            assert!(held < 20, "{held} watches");
        }
        // Changes in ignored and build folders are no sources: the next run
        // is the source's.
        dir.write("node_modules/p1/index.js", "1");
        dir.write("target/t1/out.o", "1");
        dir.write("data/d1/x.csv", "1");
        dir.write("src.txt", &print("v2"));
        live.expect_stdout("v2");
        live.expect_run(2, "src.txt changed: ok · build ");
        // A folder made after the start is watched, and the file written in
        // it at once is seen.
        std::fs::create_dir(dir.path("lib/new")).expect("mkdir lib/new");
        dir.write("lib/new/a.c", "int a;");
        live.expect_stdout("v2");
        live.expect_run(3, "lib/new/a.c changed: ok · build ");
        dir.write("lib/new/a.c", "int b;");
        live.expect_stdout("v2");
        live.expect_run(4, "lib/new/a.c changed: ok · build ");
    }
}
