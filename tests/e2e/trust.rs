//! What the session trusts on disk: the cache folder holds code, so only a
//! folder and entries the user alone can write are loaded, and no writable
//! `--dir` may reach it; the build's marker folder in the temporary directory
//! is private and never one someone else planted.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::guests::print;
use crate::support::{Dir, once, once_fails, spawn};

/// Entries end with a 48-byte trailer whose first 16 bytes are the key.
const TRAILER: usize = 48;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn cache_entries(cache: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache)
        .expect("cache folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    found.sort();
    found
}

/// `--once --cache cache FILE`: (stdout, stderr), the run a success.
fn run_a(dir: &Dir, file: &str) -> (String, String) {
    let (code, stdout, stderr) = once(dir, &["--cache", "cache", file]);
    assert_eq!(code, 0, "{stderr}");
    (stdout, stderr)
}

/// B's compiled code under A's name, with A's key in its trailer: what someone
/// who can write the cache folder or the entry plants.
fn forged_entry(entry_a: &Path, entry_b: &Path) -> Vec<u8> {
    let a = std::fs::read(entry_a).expect("A's entry");
    let mut forged = std::fs::read(entry_b).expect("B's entry");
    let (at_a, at_b) = (a.len() - TRAILER, forged.len() - TRAILER);
    forged[at_b..at_b + 16].copy_from_slice(&a[at_a..at_a + 16]);
    forged
}

#[test]
fn defect_2_cached_code_is_loaded_only_from_a_folder_and_entries_the_user_alone_can_write() {
    let dir = Dir::new();
    dir.write("a.wat", &print("I am module A"));
    dir.write("b.wat", &print("I am module B"));
    let cache = dir.path("cache");
    run_a(&dir, "b.wat");
    let [entry_b] = cache_entries(&cache).try_into().expect("B's entry");
    run_a(&dir, "a.wat");
    let entry_a = cache_entries(&cache)
        .into_iter()
        .find(|entry| *entry != entry_b)
        .expect("A's entry");
    let forged = forged_entry(&entry_a, &entry_b);
    let plant = |mode: u32| {
        let _ = std::fs::remove_file(&entry_a);
        std::fs::write(&entry_a, &forged).expect("plant");
        chmod(&entry_a, mode);
    };

    // In the user's own folder, the forgery is the user's: it is trusted (this
    // is what makes the cases below meaningful).
    plant(0o600);
    assert_eq!(run_a(&dir, "a.wat").0, "I am module B\n");

    // A folder anyone can write: not used at all, with one warning naming it.
    chmod(&cache, 0o777);
    let (stdout, stderr) = run_a(&dir, "a.wat");
    assert_eq!(stdout, "I am module A\n", "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains(&cache.display().to_string())
            && warnings[0].contains("writable by others"),
        "{stderr}"
    );
    // Nor written: the planted entry is as it was.
    assert_eq!(std::fs::read(&entry_a).expect("entry"), forged);
    chmod(&cache, 0o770);
    let (stdout, stderr) = run_a(&dir, "a.wat");
    assert_eq!(stdout, "I am module A\n", "{stderr}");
    assert!(stderr.contains("writable by its group"), "{stderr}");

    // A private folder, but an entry others can write, or a symlink: not loaded
    // (compiled again and rewritten, privately), without a word.
    chmod(&cache, 0o700);
    for mode in [0o620, 0o602] {
        plant(mode);
        let (stdout, stderr) = run_a(&dir, "a.wat");
        assert_eq!(stdout, "I am module A\n", "entry mode {mode:o}: {stderr}");
        assert!(!stderr.contains("warning"), "{stderr}");
        let rewritten = std::fs::metadata(&entry_a).expect("rewritten");
        assert_eq!(rewritten.permissions().mode() & 0o022, 0);
    }
    let elsewhere = dir.path("forged.cwasm");
    std::fs::write(&elsewhere, &forged).expect("forged file");
    chmod(&elsewhere, 0o600);
    std::fs::remove_file(&entry_a).expect("remove");
    symlink(&elsewhere, &entry_a).expect("symlink");
    assert_eq!(run_a(&dir, "a.wat").0, "I am module A\n");
    assert!(!entry_a.is_symlink(), "replaced by a real entry");

    // Owned by another user: the folder, or the entry.
    // SAFETY: geteuid only reads our effective user id.
    if unsafe { libc::geteuid() } == 0 {
        plant(0o600);
        std::os::unix::fs::chown(&entry_a, Some(65534), Some(65534)).expect("chown");
        assert_eq!(run_a(&dir, "a.wat").0, "I am module A\n");
        plant(0o600);
        std::os::unix::fs::chown(&cache, Some(65534), Some(65534)).expect("chown");
        let (stdout, stderr) = run_a(&dir, "a.wat");
        assert_eq!(stdout, "I am module A\n", "{stderr}");
        assert!(stderr.contains("owned by user 65534"), "{stderr}");
    }
}

#[test]
fn defect_3_a_writable_dir_that_reaches_the_cache_folder_is_refused() {
    let dir = Dir::new();
    dir.write("main.wat", &print("ran"));
    // The default cache folder, `$XDG_CACHE_HOME/live-wasm`, does not exist yet.
    let cache = dir.cache();
    let home = cache.parent().expect("XDG_CACHE_HOME").to_path_buf();
    let (home_text, cache_text) = (home.display().to_string(), cache.display().to_string());
    let refused = |grant: &str| {
        let stderr = once_fails(&dir, &["--dir", grant, "main.wat"], 2, "cache");
        assert!(
            stderr.contains(grant) && stderr.contains(&cache_text) && stderr.contains(":ro"),
            "{stderr}"
        );
        assert!(stderr.contains("--no-cache"), "{stderr}");
    };
    refused(&home_text);
    // Through a symlink too: real paths are compared.
    symlink(&home, dir.path("alias")).expect("symlink");
    refused("alias");
    refused(&format!("{home_text}::/data"));
    // Inside the cache folder.
    std::fs::create_dir_all(cache.join("inside")).expect("mkdir");
    refused(&cache_text);
    refused(&format!("{cache_text}/inside"));
    // An explicit cache folder, not made yet, inside the project granted.
    std::fs::create_dir(dir.path("data")).expect("mkdir");
    let stderr = once_fails(
        &dir,
        &["--cache", "data/deep/cache", "--dir", ".", "main.wat"],
        2,
        "data/deep/cache",
    );
    assert!(stderr.contains("--dir ."), "{stderr}");

    // Read-only, elsewhere, or without a cache: fine.
    for args in [
        vec!["--dir", &*format!("{home_text}:ro")],
        vec!["--dir", &*format!("{home_text}::/data:ro")],
        vec!["--no-cache", "--dir", &home_text],
        vec!["--cache", "elsewhere", "--dir", "data"],
    ] {
        let mut args = args.clone();
        args.push("main.wat");
        let (code, stdout, stderr) = once(&dir, &args);
        assert_eq!((code, stdout.as_str()), (0, "ran\n"), "{args:?}: {stderr}");
    }
}

/// How the old marker folder name is planted before the session starts: the
/// shell's pid is the session's, as it `exec`s live-wasm.
enum Plant {
    /// The folder, with a symlink `1` (the first marker) to this file.
    SymlinkTo(PathBuf),
    /// A plain file where the folder would be.
    File,
}

#[test]
fn defect_4_a_planted_marker_folder_neither_truncates_a_file_nor_ends_the_session() {
    let victim = tempfile::tempdir().expect("tempdir");
    let precious = victim.path().join("precious");
    std::fs::write(&precious, "someone's data\n").expect("write");
    for plant in [Plant::SymlinkTo(precious.clone()), Plant::File] {
        builds_and_runs_beside(plant, &precious);
    }
}

/// A `--build` session, started after `plant`, builds and runs at start and
/// after a save, and leaves `precious` as it was.
fn builds_and_runs_beside(plant: Plant, precious: &Path) {
    let untouched = || {
        let now = std::fs::read_to_string(precious).expect("read");
        assert_eq!(now, "someone's data\n");
    };
    let dir = Dir::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    dir.write("src.txt", &print("v1"));
    let planting = match &plant {
        Plant::SymlinkTo(target) => format!(
            r#"mkdir "$TMPDIR/live-wasm-$$-0" && ln -s '{}' "$TMPDIR/live-wasm-$$-0/1""#,
            target.display()
        ),
        Plant::File => r#": > "$TMPDIR/live-wasm-$$-0""#.to_owned(),
    };
    let mut command = Command::new("sh");
    command
        .env("XDG_CACHE_HOME", dir.cache().parent().expect("cache home"))
        .env("TMPDIR", tmp.path())
        .args([
            "-c",
            &format!(r#"{planting} && exec "$@""#),
            "sh",
            env!("CARGO_BIN_EXE_live-wasm"),
            "--build",
            "mkdir -p out && cp src.txt out/main.wat",
            "out/main.wat",
        ]);
    let mut live = spawn(&dir, command);
    live.expect_stdout("v1");
    live.expect_run(1, "start: ok · build ");
    untouched();
    dir.write("src.txt", &print("v2"));
    live.expect_stdout("v2");
    live.expect_run(2, "src.txt changed: ok · build ");
    untouched();
    live.signal_ends_it("TERM", 143);
    // The session's own folder went with it; what was planted is left alone.
    let left: Vec<String> = std::fs::read_dir(tmp.path())
        .expect("tmp")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].ends_with("-0"), "{left:?}");
}
