//! The attacks of issue 13, one regression test each, named after the defect:
//! a guest (or a careless user) reaching outside the root, jamming the session,
//! or writing to the terminal through our own messages.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::support::{Dir, once};
use crate::uses::module;

const LIVE_USE: &str = r#"(import "live" "use" (func $use (param i32 i32) (result i32)))"#;

/// A module whose start prints `text` (plain ASCII, no quotes).
fn prints_at_start(text: &str) -> String {
    module(
        "",
        &format!(
            r#"(data (i32.const 256) "{text}")
  (func $start (call $say (i32.const 256) (i32.const {})))
  (start $start)"#,
            text.len()
        ),
    )
}

/// An entry calling `live.use` on each name in turn, printing each code.
fn uses_each(names: &[String]) -> String {
    let mut data = String::new();
    let mut calls = String::new();
    let mut offset = 1024;
    for name in names {
        data.push_str(&format!(r#"(data (i32.const {offset}) "{name}")"#));
        calls.push_str(&format!(
            "(call $say_i32 (call $use (i32.const {offset}) (i32.const {})))\n",
            name.len()
        ));
        offset += name.len();
    }
    module(
        LIVE_USE,
        &format!("{data}\n  (func (export \"_start\")\n{calls})"),
    )
}

/// A root (`base/root`) beside a folder outside it (`base/outside`) holding
/// `secret.wat`, a module that prints `ESCAPED` if it ever runs.
fn root_beside_a_secret() -> (Dir, std::path::PathBuf) {
    let base = Dir::new();
    let root = base.path("root");
    std::fs::create_dir_all(root.join("data")).expect("mkdir root/data");
    std::fs::create_dir(base.path("outside")).expect("mkdir outside");
    base.write("outside/secret.wat", &prints_at_start("ESCAPED"));
    (base, root)
}

/// Runs `args` with `--once` in `root` (which lies inside `base`).
fn once_in(base: &Dir, root: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["--root", root.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    once(base, &all)
}

fn entry_in(root: &Path, text: &str) -> String {
    std::fs::write(root.join("main.wat"), text).expect("write main.wat");
    root.join("main.wat").to_string_lossy().into_owned()
}

#[test]
fn defect_1_a_symlink_chain_longer_than_path_max_does_not_escape() {
    let (base, root) = root_beside_a_secret();
    // data/D^20 (20 nested 250-character folders), and a chain of symlinks
    // data/h.wat -> D^10/l1 -> D^10/l2 -> ../ x22 + outside/secret.wat, whose
    // resolved path is longer than PATH_MAX.
    let folder = "d".repeat(250);
    let data = cap_std::fs::Dir::open_ambient_dir(root.join("data"), cap_std::ambient_authority())
        .expect("open data");
    let mut deep = data.try_clone().expect("clone");
    for _ in 0..20 {
        deep.create_dir(&folder).expect("mkdir");
        deep = deep.open_dir(&folder).expect("open");
    }
    let ten = [folder.as_str(); 10].join("/");
    data.symlink_contents(format!("{ten}/l1"), "h.wat")
        .expect("symlink h");
    data.open_dir(&ten)
        .expect("open D^10")
        .symlink_contents(format!("{ten}/l2"), "l1")
        .expect("symlink l1");
    deep.symlink_contents(format!("{}outside/secret.wat", "../".repeat(22)), "l2")
        .expect("symlink l2");
    // The attack as found: the kernel follows the chain to the secret, and
    // `realpath` cannot resolve it (the fallback that let it through).
    let link = root.join("data/h.wat");
    let read = std::fs::read_to_string(&link).expect("the chain resolves");
    assert!(read.contains("ESCAPED"), "the chain leads to the secret");
    assert!(link.canonicalize().is_err(), "realpath fails on it");

    let entry = entry_in(&root, &uses_each(&["data/h".into()]));
    let (code, stdout, stderr) = once_in(&base, &root, &[&entry]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "-1\n", "{stderr}");
    assert!(stderr.contains("leads outside the root"), "{stderr}");
}

#[test]
fn defect_2_a_symlink_out_says_not_found_whether_its_target_exists_or_not() {
    let (base, root) = root_beside_a_secret();
    let secret = base.path("outside/secret.wat");
    let absent = base.path("outside/absent.wat");
    for (name, target) in [
        ("yes", secret.to_string_lossy().into_owned()),
        ("no", absent.to_string_lossy().into_owned()),
        ("up_yes", "../../outside/secret.wat".into()),
        ("up_no", "../../outside/absent.wat".into()),
    ] {
        std::os::unix::fs::symlink(target, root.join(format!("data/{name}.wat"))).expect("symlink");
    }
    let names = [
        "data/yes",
        "data/no",
        "data/up_yes",
        "data/up_no",
        "data/none",
    ];
    let entry = entry_in(&root, &uses_each(&names.map(String::from)));
    let (code, stdout, stderr) = once_in(&base, &root, &[&entry]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "-1\n".repeat(5),
        "the same answer for each: {stderr}"
    );
}

#[test]
fn defect_3_a_symlink_flipped_while_modules_are_used_never_runs_an_outside_module() {
    const MODULES: usize = 1000;
    let (base, root) = root_beside_a_secret();
    // `data/d/mK` for every K, through one symlink `data/d` that leads to
    // `data/in` (harmless modules) or to the outside (secrets).
    std::fs::create_dir(root.join("data/in")).expect("mkdir");
    for k in 0..MODULES {
        std::fs::write(
            root.join(format!("data/in/m{k}.wat")),
            prints_at_start("inside"),
        )
        .expect("write");
        std::fs::copy(
            base.path("outside/secret.wat"),
            base.path(&format!("outside/m{k}.wat")),
        )
        .expect("copy");
    }
    std::os::unix::fs::symlink("in", root.join("data/d")).expect("symlink");
    // Another process's worth of mischief: the link swapped, atomically,
    // between the two as fast as it goes.
    let stop = Arc::new(AtomicBool::new(false));
    let flips = Arc::new(AtomicUsize::new(0));
    let flipper = {
        let (stop, flips) = (Arc::clone(&stop), Arc::clone(&flips));
        let (outside, data) = (base.path("outside"), root.join("data"));
        std::thread::spawn(move || {
            let spare = data.join("spare");
            while !stop.load(Ordering::Relaxed) {
                let flip = flips.fetch_add(1, Ordering::Relaxed);
                let target = if flip % 2 == 0 {
                    outside.as_path()
                } else {
                    Path::new("in")
                };
                let _ = std::fs::remove_file(&spare);
                std::os::unix::fs::symlink(target, &spare).expect("symlink");
                std::fs::rename(&spare, data.join("d")).expect("rename");
            }
        })
    };
    let names: Vec<String> = (0..MODULES).map(|k| format!("data/d/m{k}")).collect();
    let entry = entry_in(&root, &uses_each(&names));
    let runs: Vec<_> = (0..3).map(|_| once_in(&base, &root, &[&entry])).collect();
    stop.store(true, Ordering::Relaxed);
    flipper.join().expect("flipper");
    let mut inside = 0;
    for (code, stdout, stderr) in runs {
        assert_eq!(code, 0, "{stderr}");
        let escaped = stdout.lines().filter(|line| *line == "ESCAPED").count();
        assert_eq!(escaped, 0, "outside modules ran");
        inside += stdout.lines().filter(|line| *line == "inside").count();
    }
    assert!(flips.load(Ordering::Relaxed) > 100, "the link was flipped");
    assert!(inside > 0, "some uses found the inside modules");
}

#[test]
fn defect_14_a_folder_named_dep_wat_does_not_hide_dep_wasm() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path("dep.wat")).expect("mkdir");
    let wasm = wat::parse_str(prints_at_start("from dep.wasm")).expect("valid");
    std::fs::write(dir.path("dep.wasm"), wasm).expect("write");
    dir.write("main.wat", &uses_each(&["dep".into()]));
    let (code, stdout, stderr) = once(&dir, &["main.wat"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "from dep.wasm\n0\n", "{stderr}");
}

#[test]
fn defect_15_a_huge_use_name_is_refused_before_it_is_copied() {
    let dir = Dir::new();
    // A 200 MB name: the length alone refuses it, and the message is short.
    let live_use = module(
        LIVE_USE,
        r#"(func (export "_start")
    (call $say_i32 (call $use (i32.const 0) (i32.const 200000000))))"#,
    );
    let big_memory = "(memory (export \"memory\") 3100)";
    dir.write(
        "main.wat",
        &live_use.replace("(memory (export \"memory\") 1)", big_memory),
    );
    let (code, stdout, stderr) = once(&dir, &["main.wat"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "-5\n", "{stderr}");
    assert!(stderr.contains("200000000 bytes long"), "{stderr}");
    assert!(stderr.len() < 10_000, "{} bytes of stderr", stderr.len());
}

#[test]
fn defect_8_folders_deleted_recreated_or_replaced_are_watched_again() {
    folders_deleted_recreated_or_replaced_are_watched_again_with(&[]);
}

#[test]
fn defect_8_folders_deleted_recreated_or_replaced_are_watched_again_when_polling() {
    folders_deleted_recreated_or_replaced_are_watched_again_with(&["--poll=50ms"]);
}

fn folders_deleted_recreated_or_replaced_are_watched_again_with(watcher: &[&str]) {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.path("app/lib")).expect("mkdir");
    std::fs::create_dir(dir.path("gen")).expect("mkdir");
    let says = |text: &str| {
        module(
            "",
            &format!(
                r#"(data (i32.const 256) "{text}")
  (func (export "f") (call $say (i32.const 256) (i32.const {})))"#,
                text.len()
            ),
        )
    };
    dir.write("app/lib/m.wat", &says("m v1"));
    let calls_m = r#"(func (export "_start") (call $f))"#;
    dir.write(
        "app/main.wat",
        &module(r#"(import "lib/m" "f" (func $f))"#, calls_m),
    );
    let mut args = watcher.to_vec();
    args.extend(["--watch", "gen", "app/main.wat"]);
    let mut live = crate::support::live_wasm(&dir, &args);
    live.expect_stdout("m v1");
    live.expect_run(1, "start: ok");

    // A used module's folder deleted and made again.
    dir.tool("rm", &["-rf", "app/lib"]);
    dir.tool("mkdir", &["app/lib"]);
    dir.write("app/lib/m.wat", &says("m v2"));
    live.expect_stdout("m v2");
    live.expect_run(2, "changed: ok");

    // A `--watch` folder deleted and made again.
    dir.tool("rm", &["-rf", "gen"]);
    dir.tool("mkdir", &["gen"]);
    dir.write("gen/data.txt", "new");
    live.expect_stdout("m v2");
    live.expect_run(3, "gen/data.txt changed: ok");

    // The entry's own folder moved away and replaced by a copy.
    dir.tool("mv", &["app", "app.old"]);
    dir.tool("cp", &["-r", "app.old", "app"]);
    dir.write("app/lib/m.wat", &says("m v3"));
    live.expect_stdout("m v3");
    live.expect_run(4, "changed: ok");
    dir.write("app/main.wat", &crate::guests::print("main v4"));
    live.expect_stdout("main v4");
    live.expect_run(5, "main.wat changed: ok");
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn defect_9_fifos_are_passed_over_and_never_block_a_session() {
    fifos_are_passed_over_and_never_block_a_session_with(&[]);
}

#[test]
fn defect_9_fifos_are_passed_over_and_never_block_a_session_when_polling() {
    fifos_are_passed_over_and_never_block_a_session_with(&["--poll=50ms"]);
}

fn fifos_are_passed_over_and_never_block_a_session_with(watcher: &[&str]) {
    let dir = Dir::new();
    std::fs::create_dir(dir.path("gen")).expect("mkdir");
    dir.write("gen/data.txt", "1");
    mkfifo(&dir.path("stdin.txt"));
    dir.write("main.wat", &crate::guests::print("v1"));
    let mut args = watcher.to_vec();
    args.extend(["--watch", "gen", "main.wat"]);
    let mut live = crate::support::live_wasm(&dir, &args);
    live.expect_stdout("v1");
    live.expect_run(1, "start: ok");

    // FIFOs renamed over the entry and over a watched file, and a new one
    // in a watched folder: none is read, none is a save.
    for (fifo, over) in [("main.tmp", "main.wat"), ("gen/data.tmp", "gen/data.txt")] {
        mkfifo(&dir.path(fifo));
        std::fs::rename(dir.path(fifo), dir.path(over)).expect("rename");
    }
    mkfifo(&dir.path("gen/new"));
    dir.write_rename("main.wat", &crate::guests::print("v2"));
    live.expect_stdout("v2");
    live.expect_run(2, "main.wat changed: ok");
    dir.write_rename("gen/data.txt", "2");
    live.expect_stdout("v2");
    live.expect_run(3, "gen/data.txt changed: ok");
    live.ctrl_c();
    assert_eq!(live.wait_exit(), 130);
}

#[test]
fn defect_9_a_fifo_as_a_module_or_stdin_fails_the_run_at_once() {
    let dir = Dir::new();
    mkfifo(&dir.path("pipe.wat"));
    mkfifo(&dir.path("stdin.txt"));
    dir.write("main.wat", &uses_each(&["pipe".into()]));
    let (code, stdout, stderr) = once(&dir, &["main.wat"]);
    assert_eq!((code, stdout.as_str()), (0, "-1\n"), "{stderr}");
    assert!(
        stderr.contains("pipe.wat is passed over: it is a FIFO"),
        "{stderr}"
    );

    let mut live = crate::support::live_wasm(&dir, &["--stdin", "stdin.txt", "main.wat"]);
    let line = live.expect_run(1, "start: ");
    assert!(line.contains("error"), "{line}");
    live.expect_status("stdin.txt: cannot read it: it is a FIFO, not a regular file");
    live.ctrl_c();
    assert_eq!(live.wait_exit(), 130);
}

#[test]
fn defect_12_a_huge_file_in_a_watched_folder_is_hashed_in_bounded_memory() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path("gen")).expect("mkdir");
    dir.write("main.wat", &crate::guests::print("v1"));
    let mut live = crate::support::live_wasm(&dir, &["--watch", "gen", "main.wat"]);
    live.expect_stdout("v1");
    live.expect_run(1, "start: ok");
    let before = peak_rss(live.pid());

    // 512 MiB (sparse: quick to make, and read in full to be hashed).
    let big = std::fs::File::create(dir.path("gen/big.bin")).expect("create");
    big.set_len(512 << 20).expect("set_len");
    drop(big);
    live.expect_stdout("v1");
    live.expect_run(2, "gen/big.bin changed: ok");
    let grown_mib = peak_rss(live.pid()).saturating_sub(before) >> 20;
    assert!(grown_mib < 64, "peak RSS grew by {grown_mib} MiB");
}

/// The most memory the process `pid` has held (its high-water mark), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .expect("VmHWM in /proc/PID/status")
        * 1024
}

#[test]
fn defect_11_max_memory_bounds_tables_too() {
    let dir = Dir::new();
    // 100M more elements in a funcref table: 800 MB of host memory if granted.
    let grow = module(
        "(table $t 1 funcref)",
        r#"(func (export "_start")
    (call $say_i32 (table.grow $t (ref.null func) (i32.const 100000000))))"#,
    );
    dir.write("main.wat", &grow);
    let mut live = crate::support::live_wasm(&dir, &["--max-memory", "1MiB", "main.wat"]);
    live.expect_stdout("-1");
    live.expect_run(1, "start");
    live.expect_status("over --max-memory 1.0 MiB");
    let peak = peak_rss(live.pid());
    assert!(peak < 200 << 20, "the session held {} MiB", peak >> 20);

    // Under the cap, a table grows; and the session goes on.
    dir.write("main.wat", &grow.replace("100000000", "1000"));
    live.expect_stdout("1");
    live.expect_run(2, "ok");
}

/// A module that opens `data/f` (through its first preopen) until an open
/// fails, says whether it was for too many open files, and holds them all,
/// spinning, until stopped.
fn opens_files_until_refused(tag: &str) -> String {
    let too_many = format!("{tag}: too many open files");
    let other = format!("{tag}: another error");
    module(
        r#"(import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#,
        &format!(
            r#"(data (i32.const 256) "f")
  (data (i32.const 300) "{too_many}")
  (data (i32.const 400) "{other}")
  (func (export "_start") (local $errno i32)
    (loop $open
      (local.set $errno (call $path_open (i32.const 3) (i32.const 0) (i32.const 256)
        (i32.const 1) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 512)))
      (br_if $open (i32.eqz (local.get $errno))))
    ;; 33: EMFILE.
    (if (i32.eq (local.get $errno) (i32.const 33))
      (then (call $say (i32.const 300) (i32.const {})))
      (else (call $say (i32.const 400) (i32.const {}))))
    (loop $hold (br $hold)))"#,
            too_many.len(),
            other.len()
        ),
    )
}

#[test]
fn defect_10_a_guest_holding_every_file_it_can_does_not_hide_the_next_save() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path("data")).expect("mkdir data");
    dir.write("data/f", "opened again and again");
    dir.write("main.wat", &opens_files_until_refused("first"));
    let mut live =
        crate::support::live_wasm_with_open_file_limit(&dir, 1024, &["--dir", "data", "main.wat"]);
    live.expect_stdout("first: too many open files");
    // The guest still holds them all: the session can still read a save.
    dir.write("main.wat", &opens_files_until_refused("second"));
    live.expect_stdout("second: too many open files");
    live.expect_run(1, "stopped by a change");
}

/// What a hostile guest writes: a clipboard write (OSC 52), a screen clear,
/// then red text, which a terminal may show.
const TERMINAL_ATTACK: &[u8] = b"\x1b]52;c;SGVsbG8=\x07\x1b[2J\x1b[31mred\x1b[0m plain";
const SHOWN_ON_A_TERMINAL: &[u8] = b"\x1b[31mred\x1b[0m plain";

/// Core instructions that store `bytes` at `at` in memory 0.
fn stores(at: u32, bytes: &[u8]) -> String {
    (at..)
        .zip(bytes)
        .map(|(at, byte)| format!("(i32.store8 (i32.const {at}) (i32.const {byte}))\n"))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn defect_13_guest_output_cannot_drive_our_terminal() {
    let dir = Dir::new();
    let len = TERMINAL_ATTACK.len();
    // A core module (WASI preview 1) writing it to stdout and to stderr.
    dir.write(
        "core.wat",
        &module(
            "",
            &format!(
                r#"(func (export "_start")
    {}
    (call $say (i32.const 1024) (i32.const {len}))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8))))"#,
                stores(1024, TERMINAL_ATTACK)
            ),
        ),
    );
    // A component (WASI 0.2) writing it to `wasi:cli/stdout`.
    let write = format!(
        "{}(call $write (call $get-stdout) (i32.const 1024) (i32.const {len}) (i32.const 0))",
        stores(1024, TERMINAL_ATTACK)
    );
    dir.write(
        "component.wat",
        &crate::component_wat::command("component", &write, 0),
    );

    for entry in ["core.wat", "component.wat"] {
        let (code, stdout, stderr) = crate::support::once_on_terminal(&dir, &[entry]);
        assert_eq!(code, 0, "{entry}: {}", String::from_utf8_lossy(&stderr));
        for (stream, shown) in [("stdout", &stdout), ("stderr", &stderr)] {
            let lossy = String::from_utf8_lossy(shown);
            assert!(!contains(shown, b"\x1b]52"), "{entry} {stream}: {lossy:?}");
            assert!(!contains(shown, b"\x1b[2J"), "{entry} {stream}: {lossy:?}");
        }
        assert!(
            contains(&stdout, SHOWN_ON_A_TERMINAL),
            "{entry}: {stdout:?}"
        );
    }
    let (_, _, core_stderr) = crate::support::once_on_terminal(&dir, &["core.wat"]);
    assert!(
        contains(&core_stderr, SHOWN_ON_A_TERMINAL),
        "{core_stderr:?}"
    );

    // Not a terminal: every byte, untouched.
    let output = dir
        .command()
        .args(["--once", "core.wat"])
        .output()
        .expect("run live-wasm");
    let mut line = TERMINAL_ATTACK.to_vec();
    line.push(b'\n');
    assert_eq!(output.stdout, line);
    assert_eq!(output.stderr, TERMINAL_ATTACK);
}

/// Found by `fuzz/` (target `live_use`): a name too long for the file system
/// (a component over 255 bytes, a path over 4096) named no file, yet `live.use`
/// answered -2 "cannot read it: File name too long" instead of -1.
#[test]
fn fuzz_a_name_too_long_for_the_file_system_is_not_found() {
    let dir = Dir::new();
    let names = [
        "l".repeat(300),
        format!("{}/x", "d".repeat(300)),
        format!("{}ab", "a/".repeat(2047)),
    ];
    dir.write("main.wat", &uses_each(&names));
    let (code, stdout, stderr) = once(&dir, &["main.wat"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "-1\n".repeat(3), "{stderr}");
    assert!(!stderr.contains("cannot read"), "{stderr}");
}
