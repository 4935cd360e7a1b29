//! The files a guest reads through WASI are watched like module files: saving
//! one re-runs the program; what the guest writes never does.

use crate::support::{Dir, live_wasm};

/// `oflags` of a write: create or truncate, and create only when missing.
const REWRITE: i32 = 9;
const CREATE_NEW: i32 = 5;

/// A WASI command that writes `x` to `write` (when given, opened with its
/// `oflags`), then prints the content of `read` (opened from the first
/// preopen), or `missing`.
fn reader(read: &str, write: Option<(&str, i32)>) -> String {
    let write = write.map_or(String::new(), |(name, oflags)| {
        format!(
            r#"(data (i32.const 300) "{name}")
  (data (i32.const 400) "x")
  (func $write
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 1) (i32.const 300) (i32.const {len})
                  (i32.const {oflags}) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16)))
      (then
        (i32.store (i32.const 20) (i32.const 400))
        (i32.store (i32.const 24) (i32.const 1))
        (drop (call $fd_write (i32.load (i32.const 16)) (i32.const 20) (i32.const 1) (i32.const 28)))
        (drop (call $fd_close (i32.load (i32.const 16)))))))
  (start $write)"#,
            len = name.len()
        )
    });
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "{read}")
  (data (i32.const 200) "missing\n")
  {write}
  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 1) (i32.const 100) (i32.const {len})
                  (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
      (then
        (i32.store (i32.const 20) (i32.const 1024))
        (i32.store (i32.const 24) (i32.const 4096))
        (drop (call $fd_read (i32.load (i32.const 16)) (i32.const 20) (i32.const 1) (i32.const 28)))
        (call $print (i32.const 1024) (i32.load (i32.const 28))))
      (else (call $print (i32.const 200) (i32.const 8))))))
"#,
        len = read.len()
    )
}

#[test]
fn a_file_the_guest_reads_reruns_it_however_it_is_saved() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path("lib")).expect("mkdir");
    dir.write("lib/data.txt", "one\n");
    dir.write("main.wat", &reader("lib/../lib/data.txt", None));
    for watcher in [&[][..], &["--poll=50ms"][..]] {
        let mut args = watcher.to_vec();
        args.extend(["--dir", ".::.", "main.wat"]);
        let mut session = live_wasm(&dir, &args);
        session.expect_stdout("one");
        session.expect_run(1, "start: ok");
        dir.write("lib/data.txt", "two\n");
        session.expect_stdout("two");
        session.expect_run(2, "lib/data.txt changed: ok");
        dir.write_rename("lib/data.txt", "three\n");
        session.expect_stdout("three");
        session.expect_run(3, "lib/data.txt changed: ok");
        dir.delete_recreate("lib/data.txt", "four\n");
        session.expect_stdout("four");
        session.expect_run(4, "lib/data.txt changed: ok");
        dir.write("lib/data.txt", "one\n");
        session.expect_run(5, "lib/data.txt changed: ok");
    }
}

#[test]
fn a_file_looked_for_and_not_found_runs_it_when_it_appears() {
    let dir = Dir::new();
    dir.write("main.wat", &reader("later.txt", None));
    let mut session = live_wasm(&dir, &["--dir", ".::.", "main.wat"]);
    session.expect_stdout("missing");
    session.expect_run(1, "start: ok");
    dir.write("later.txt", "here now\n");
    session.expect_stdout("here now");
    session.expect_run(2, "later.txt changed: ok");
}

#[test]
fn what_the_guest_writes_never_starts_a_run() {
    let dir = Dir::new();
    dir.write("data.txt", "data\n");
    dir.write("out.txt", "before\n");
    // Run 1 reads out.txt: it is watched when run 2 writes it.
    dir.write("main.wat", &reader("out.txt", None));
    let mut session = live_wasm(&dir, &["--dir", ".::.", "main.wat"]);
    session.expect_stdout("before");
    session.expect_run(1, "start: ok");

    dir.write("main.wat", &reader("data.txt", Some(("out.txt", REWRITE))));
    session.expect_stdout("data");
    session.expect_run(2, "main.wat changed: ok");
    assert_eq!(dir.read("out.txt"), "x");
    // Had the guest's write counted as a save, run 3 would say `out.txt changed`.
    dir.write("data.txt", "saved\n");
    session.expect_stdout("saved");
    session.expect_run(3, "data.txt changed: ok");
    dir.write("data.txt", "again\n");
    session.expect_run(4, "data.txt changed: ok");
    // What the guest wrote is not watched: the user's save of it runs nothing,
    // and the next save of a watched file is run 5.
    dir.write("out.txt", "by hand\n");
    dir.write("data.txt", "last\n");
    session.expect_stdout("last");
    session.expect_run(5, "data.txt changed: ok");
}

#[test]
fn what_the_guest_writes_in_a_watched_folder_never_starts_a_run() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path("gen")).expect("mkdir");
    dir.write("data.txt", "one\n");
    // The guest creates gen/out.txt when it is missing: the first run writes
    // it, later runs only try.
    let guest = reader("data.txt", Some(("gen/out.txt", CREATE_NEW)));
    dir.write("main.wat", &guest);
    let mut session = live_wasm(&dir, &["--dir", ".::.", "--watch", "gen", "main.wat"]);
    session.expect_stdout("one");
    session.expect_run(1, "start: ok");
    assert_eq!(dir.read("gen/out.txt"), "x");
    for (run, text) in [(2, "two"), (3, "three")] {
        dir.write("data.txt", &format!("{text}\n"));
        session.expect_stdout(text);
        session.expect_run(run, "data.txt changed: ok");
    }
    // A person's save of the file is one. (Saved at the moment a run writes
    // it, two writers meet: see the README.)
    dir.write("gen/out.txt", "by hand");
    session.expect_run(4, "gen/out.txt changed: ok");
    dir.write("data.txt", "four\n");
    session.expect_run(5, "data.txt changed: ok");
}
