//! The attacks of issue 23 on what the host does for a guest's files, one
//! regression test each, named after the defect: a guest turning a name it
//! looked for into a symlink out, updating a file it reads by rename, and
//! looking for so many files that the session stalls or swells.

use std::time::{Duration, Instant};

use crate::support::{Dir, LiveWasm, Stream, live_wasm};

/// A WASI command built from steps on its first preopen (descriptor 3), in
/// order: each step's strings are data segments of its own.
#[derive(Default)]
struct Guest {
    data: String,
    body: String,
    /// The next free byte for a string.
    at: usize,
}

/// Where the numbered names of [`Guest::numbered`] are built.
const NAME_BUFFER: usize = 8192;
/// Six decimal digits of the loop's counter stand for this in a template.
const DIGITS: &str = "######";

impl Guest {
    fn new() -> Self {
        Self {
            // Strings go from here on, past the scratch and the name buffer.
            at: 16384,
            ..Self::default()
        }
    }

    /// Lays `text` in memory; its pointer and length.
    fn string(&mut self, text: &str) -> (usize, usize) {
        let at = self.at;
        let escaped: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
        self.data
            .push_str(&format!("  (data (i32.const {at}) \"{escaped}\")\n"));
        self.at += text.len().max(1);
        (at, text.len())
    }

    fn step(&mut self, code: String) -> &mut Self {
        self.body.push_str(&code);
        self.body.push('\n');
        self
    }

    fn mkdir(&mut self, name: &str) -> &mut Self {
        let (p, l) = self.string(name);
        self.step(format!(
            "(drop (call $mkdir (i32.const 3) (i32.const {p}) (i32.const {l})))"
        ))
    }

    fn rmdir(&mut self, name: &str) -> &mut Self {
        let (p, l) = self.string(name);
        self.step(format!(
            "(drop (call $rmdir (i32.const 3) (i32.const {p}) (i32.const {l})))"
        ))
    }

    fn symlink(&mut self, target: &str, name: &str) -> &mut Self {
        let (tp, tl) = self.string(target);
        let (p, l) = self.string(name);
        self.step(format!(
            "(drop (call $symlink (i32.const {tp}) (i32.const {tl}) (i32.const 3) (i32.const {p}) (i32.const {l})))"
        ))
    }

    fn stat(&mut self, name: &str) -> &mut Self {
        let (p, l) = self.string(name);
        self.step(format!(
            "(drop (call $stat (i32.const 3) (i32.const 1) (i32.const {p}) (i32.const {l}) (i32.const 512)))"
        ))
    }

    fn rename(&mut self, from: &str, to: &str) -> &mut Self {
        let (fp, fl) = self.string(from);
        let (tp, tl) = self.string(to);
        self.step(format!(
            "(drop (call $rename (i32.const 3) (i32.const {fp}) (i32.const {fl}) (i32.const 3) (i32.const {tp}) (i32.const {tl})))"
        ))
    }

    /// Creates or truncates `name` and writes `text` into it.
    fn write(&mut self, name: &str, text: &str) -> &mut Self {
        let (p, l) = self.string(name);
        let (tp, tl) = self.string(text);
        self.step(format!(
            "(call $write (i32.const {p}) (i32.const {l}) (i32.const {tp}) (i32.const {tl}))"
        ))
    }

    /// Prints the first line of `name`, or `missing`.
    fn print_file(&mut self, name: &str) -> &mut Self {
        let (p, l) = self.string(name);
        self.step(format!(
            "(call $print_file (i32.const {p}) (i32.const {l}))"
        ))
    }

    /// Prints `text` and a newline.
    fn say(&mut self, text: &str) -> &mut Self {
        let (p, l) = self.string(&format!("{text}\n"));
        self.step(format!("(call $print (i32.const {p}) (i32.const {l}))"))
    }

    /// For each `i` below `count`: `template` with `i` in place of its
    /// [`DIGITS`] is made and, when `mkdir_first`, the folder named by its
    /// part before the first `/` is created; then it is stat'ed.
    fn numbered(&mut self, count: u32, template: &str, mkdir_first: bool) -> &mut Self {
        let digits = template.find(DIGITS).expect("a template has digits");
        let (src, len) = self.string(template);
        let folder_len = template.find('/').unwrap_or(len);
        let mkdir = match mkdir_first {
            true => format!(
                "(drop (call $mkdir (i32.const 3) (i32.const {NAME_BUFFER}) (i32.const {folder_len})))"
            ),
            false => String::new(),
        };
        self.step(format!(
            "(memory.copy (i32.const {NAME_BUFFER}) (i32.const {src}) (i32.const {len}))
  (local.set $i (i32.const 0))
  (block $done (loop $next
    (br_if $done (i32.ge_u (local.get $i) (i32.const {count})))
    (call $digits (i32.const {}) (local.get $i))
    {mkdir}
    (drop (call $stat (i32.const 3) (i32.const 1) (i32.const {NAME_BUFFER}) (i32.const {len}) (i32.const 512)))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $next)))",
            NAME_BUFFER + digits
        ))
    }

    fn wat(&self) -> String {
        format!(
            r#"(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $stat (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $mkdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_remove_directory" (func $rmdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename" (func $rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 200) "missing\n")
{data}
  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $write (param $name i32) (param $len i32) (param $text i32) (param $text_len i32)
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 1) (local.get $name) (local.get $len)
                  (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16)))
      (then
        (i32.store (i32.const 20) (local.get $text))
        (i32.store (i32.const 24) (local.get $text_len))
        (drop (call $fd_write (i32.load (i32.const 16)) (i32.const 20) (i32.const 1) (i32.const 28)))
        (drop (call $fd_close (i32.load (i32.const 16)))))))
  (func $print_file (param $name i32) (param $len i32)
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 1) (local.get $name) (local.get $len)
                  (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
      (then
        (i32.store (i32.const 20) (i32.const 4096))
        (i32.store (i32.const 24) (i32.const 4096))
        (drop (call $fd_read (i32.load (i32.const 16)) (i32.const 20) (i32.const 1) (i32.const 28)))
        (drop (call $fd_close (i32.load (i32.const 16))))
        (call $print (i32.const 4096) (i32.load (i32.const 28))))
      (else (call $print (i32.const 200) (i32.const 8)))))
  (func $digits (param $at i32) (param $n i32)
    (local $k i32)
    (local.set $k (i32.const 6))
    (loop $next
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (i32.store8 (i32.add (local.get $at) (local.get $k))
                  (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $next (local.get $k))))
  (func (export "_start")
    (local $i i32)
{body}))
"#,
            data = self.data,
            body = self.body
        )
    }
}

/// A project `base/root` whose guest is granted `base/root/d`, beside
/// `base/secret` holding `present`.
fn project() -> Dir {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.path("d")).expect("mkdir d");
    std::fs::create_dir_all(dir.path("secret")).expect("mkdir secret");
    dir.write("secret/present", "outside");
    dir
}

/// A session on `main.wat` with `d` granted (as `.`) and `extra` flags.
fn session(dir: &Dir, extra: &[&str]) -> LiveWasm {
    let mut args = vec!["--dir", "d::."];
    args.extend(extra);
    args.push("main.wat");
    live_wasm(dir, &args)
}

/// Saves `main.wat` as a guest that only prints `text`, and checks that the
/// next run is that save's, number `number`: no run came in between.
fn next_run_is_the_users(dir: &Dir, live: &mut LiveWasm, number: u64, text: &str) {
    dir.write("main.wat", &Guest::new().say(text).wat());
    live.expect_stdout(text);
    live.expect_run(number, "main.wat changed: ok");
}

/// The inotify watches the process holds (Linux's fdinfo of each inotify fd).
pub(crate) fn watches(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return 0;
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
        .map(|info| {
            info.lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count()
        })
        .sum()
}

/// The peak resident memory of process `pid`, in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn defect_1_a_name_the_guest_turned_into_a_symlink_out_is_never_looked_at() {
    for watcher in [&[][..], &["--poll=50ms"][..]] {
        let dir = project();
        // It looks for a/present while `a` is a folder of its own, then makes
        // `a` a symlink to the secret folder beside its grant.
        let mut guest = Guest::new();
        guest
            .mkdir("a")
            .stat("a/present")
            .rmdir("a")
            .symlink("../secret", "a")
            .say("planted");
        dir.write("main.wat", &guest.wat());
        let mut live = session(&dir, watcher);
        live.expect_stdout("planted");
        live.expect_run(1, "start: ok");
        // The file outside exists, and changes: neither is a run.
        dir.write("secret/present", "changed outside");
        next_run_is_the_users(&dir, &mut live, 2, "saved");
        dir.write("secret/present", "changed again");
        next_run_is_the_users(&dir, &mut live, 3, "saved again");
        let transcript = live.transcript();
        assert!(!transcript.contains("present"), "{transcript}");
    }
}

#[test]
fn defect_8_a_guest_updating_a_file_it_reads_by_rename_runs_once() {
    for (watcher, read) in [
        (&[][..], "state"),
        (&[][..], "alias"),
        (&["--poll=50ms"][..], "state"),
        (&["--poll=50ms"][..], "alias"),
    ] {
        let dir = project();
        dir.write("d/state", "0\n");
        std::os::unix::fs::symlink("state", dir.path("d/alias")).expect("symlink");
        let mut guest = Guest::new();
        guest
            .print_file(read)
            .write("state.new", "guest\n")
            .rename("state.new", "state");
        dir.write("main.wat", &guest.wat());
        let mut live = session(&dir, watcher);
        live.expect_stdout("0");
        live.expect_run(1, "start: ok");
        next_run_is_the_users(&dir, &mut live, 2, "saved");
        dir.write("main.wat", &guest.wat());
        live.expect_stdout("guest");
        live.expect_run(3, "main.wat changed: ok");
        // The file read is still watched: the user's save of it is a run.
        // (A save of the file a symlink leads to shows no event under the
        // symlink's name: that is the watcher's, not this defect's.)
        if read == "state" {
            dir.write_rename("d/state", "user\n");
            live.expect_stdout("user");
            live.expect_run(4, "d/state changed: ok");
        } else {
            next_run_is_the_users(&dir, &mut live, 4, "saved again");
        }
    }
}

/// A long path of missing folders, numbered: `m######/` then 14 folders of
/// 250 letters and a file.
fn long_missing_path() -> String {
    let folder = "f".repeat(250);
    format!("m{DIGITS}/{}/x", [folder.as_str(); 14].join("/"))
}

/// How long after the guest's last line the status line of its run came.
fn after_the_run(live: &mut LiveWasm, last: &str) -> Duration {
    live.expect_stdout(last);
    let printed = Instant::now();
    live.expect(Stream::Err, |line| line.starts_with("[live-wasm] #1 "));
    printed.elapsed()
}

#[test]
fn defect_10_many_missing_paths_never_stall_the_session() {
    let dir = project();
    let mut guest = Guest::new();
    guest
        .numbered(10_000, &long_missing_path(), false)
        .say("looked");
    dir.write("main.wat", &guest.wat());
    let mut live = session(&dir, &[]);
    let taken = after_the_run(&mut live, "looked");
    eprintln!("defect 10: the run's status line {taken:?} after its last output");
    // Before: 4.7 s on the session thread here (debug build; 10-19 s reported).
    assert!(taken < Duration::from_secs(1), "{taken:?}");
    let saved = Instant::now();
    next_run_is_the_users(&dir, &mut live, 2, "saved");
    assert!(
        saved.elapsed() < Duration::from_secs(2),
        "{:?}",
        saved.elapsed()
    );
    let asked = Instant::now();
    live.signal_ends_it("TERM", 143);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
}

#[test]
fn defect_11_noted_names_take_bounded_host_memory() {
    let dir = project();
    let mut guest = Guest::new();
    guest
        .numbered(100_000, &long_missing_path(), false)
        .say("looked");
    dir.write("main.wat", &guest.wat());
    let mut live = session(&dir, &["--max-memory", "1MiB"]);
    live.expect_stdout("looked");
    live.expect_run(1, "start: ok");
    live.expect_status("are not watched");
    // Before: 1.7-2.6 GB at its peak.
    let peak = peak_kib(live.pid());
    eprintln!("defect 11: peak {peak} KiB");
    assert!(peak < 400 * 1024, "peak {peak} KiB");
    next_run_is_the_users(&dir, &mut live, 2, "saved");
}

#[test]
fn defect_12_the_watches_a_run_adds_are_bounded() {
    let dir = project();
    let mut guest = Guest::new();
    guest.numbered(10_000, "d######/x", true).say("looked");
    dir.write("main.wat", &guest.wat());
    let mut live = session(&dir, &[]);
    live.expect_stdout("looked");
    live.expect_run(1, "start: ok");
    live.expect_status("are not watched");
    // Before: 10,001.
    let held = watches(live.pid());
    eprintln!("defect 12: {held} watches");
    assert!(held <= 1010, "{held} watches");
    // The next run looks into none of them: their watches go.
    next_run_is_the_users(&dir, &mut live, 2, "saved");
    let left = watches(live.pid());
    eprintln!("defect 12: {left} watches after a run that reads nothing");
    assert!(left <= 4, "{left} watches");
}
