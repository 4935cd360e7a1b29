//! What a component (WASI 0.2) does with its files, as issue 23 asks of core
//! modules: its writes, renames, links and removes in a watched folder are
//! its own, never a save, and what it reads is watched. The components are
//! written in the text format, built from steps on their first preopen.

use crate::component_wat;
use crate::support::{Dir, LiveWasm, live_wasm};

/// A `wasi:cli/run` command built from steps on its first preopen (the
/// first of `get-directories`), in order; a step that fails traps.
#[derive(Default)]
struct Component {
    data: String,
    body: String,
    /// The next free byte for a string.
    at: usize,
}

/// Where the results of calls are written (the scratch below the strings).
const RESULT: usize = 32;
/// Where [`Component::write_stamped`] puts the clock's reading.
const STAMP: usize = 16;

impl Component {
    fn new() -> Self {
        Self {
            at: 1024,
            ..Self::default()
        }
    }

    /// Lays `text` in memory; its pointer and length.
    fn string(&mut self, text: &str) -> (usize, usize) {
        let at = self.at;
        let escaped: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
        self.data
            .push_str(&format!("    (data (i32.const {at}) \"{escaped}\")\n"));
        self.at += text.len().max(1);
        (at, text.len())
    }

    fn step(&mut self, code: String) -> &mut Self {
        self.body.push_str("      ");
        self.body.push_str(&code);
        self.body.push('\n');
        self
    }

    /// Prints `text` as a line.
    fn say(&mut self, text: &str) -> &mut Self {
        let (p, l) = self.string(&format!("{text}\n"));
        self.step(format!(
            "(call $write (call $get-stdout) (i32.const {p}) (i32.const {l}) (i32.const 0))"
        ))
    }

    /// Creates or truncates `name` and writes `contents` to it.
    fn write(&mut self, name: &str, contents: &str) -> &mut Self {
        let (p, l) = self.string(name);
        let (cp, cl) = self.string(contents);
        self.step(format!(
            "(call $put (i32.const {p}) (i32.const {l}) (i32.const {cp}) (i32.const {cl}))"
        ))
    }

    /// Creates or truncates `name` and writes the monotonic clock's reading
    /// to it (8 bytes): another content at every run.
    fn write_stamped(&mut self, name: &str) -> &mut Self {
        let (p, l) = self.string(name);
        self.step(format!(
            "(i64.store (i32.const {STAMP}) (call $now)) (call $put (i32.const {p}) (i32.const {l}) (i32.const {STAMP}) (i32.const 8))"
        ))
    }

    /// Prints what `name` holds (up to 4 KiB).
    fn print_file(&mut self, name: &str) -> &mut Self {
        let (p, l) = self.string(name);
        self.step(format!("(call $show (i32.const {p}) (i32.const {l}))"))
    }

    /// Prints `found` or `missing`, as `stat-at` finds `name` or not.
    fn print_whether(&mut self, name: &str) -> &mut Self {
        let (p, l) = self.string(name);
        let (fp, fl) = self.string("found\n");
        let (mp, ml) = self.string("missing\n");
        self.step(format!(
            "(call $stat-at (global.get $d) (i32.const 0) (i32.const {p}) (i32.const {l}) (i32.const {RESULT}))
      (if (i32.load8_u (i32.const {RESULT}))
        (then (call $write (call $get-stdout) (i32.const {mp}) (i32.const {ml}) (i32.const 0)))
        (else (call $write (call $get-stdout) (i32.const {fp}) (i32.const {fl}) (i32.const 0))))"
        ))
    }

    /// Opens the folder `name` and makes it the one later steps work in.
    fn enter(&mut self, name: &str) -> &mut Self {
        let (p, l) = self.string(name);
        // open-flags directory; descriptor-flags read | mutate-directory.
        self.step(format!(
            "(global.set $d (call $open (i32.const {p}) (i32.const {l}) (i32.const 2) (i32.const 33)))"
        ))
    }

    /// Makes the preopen the folder later steps work in again.
    fn leave(&mut self) -> &mut Self {
        self.step("(global.set $d (global.get $root))".to_owned())
    }

    fn rename(&mut self, old: &str, new: &str) -> &mut Self {
        let (op, ol) = self.string(old);
        let (np, nl) = self.string(new);
        self.step(format!(
            "(call $rename-at (global.get $d) (i32.const {op}) (i32.const {ol}) (global.get $d) (i32.const {np}) (i32.const {nl}) (i32.const {RESULT})) (call $check)"
        ))
    }

    fn link(&mut self, old: &str, new: &str) -> &mut Self {
        let (op, ol) = self.string(old);
        let (np, nl) = self.string(new);
        self.step(format!(
            "(call $link-at (global.get $d) (i32.const 0) (i32.const {op}) (i32.const {ol}) (global.get $d) (i32.const {np}) (i32.const {nl}) (i32.const {RESULT})) (call $check)"
        ))
    }

    fn symlink(&mut self, target: &str, name: &str) -> &mut Self {
        let (tp, tl) = self.string(target);
        let (p, l) = self.string(name);
        self.step(format!(
            "(call $symlink-at (global.get $d) (i32.const {tp}) (i32.const {tl}) (i32.const {p}) (i32.const {l}) (i32.const {RESULT})) (call $check)"
        ))
    }

    /// `call` (`$mkdir`, `$rmdir`, `$unlink`) of one name.
    fn one_name(&mut self, call: &str, name: &str) -> &mut Self {
        let (p, l) = self.string(name);
        self.step(format!(
            "(call {call} (global.get $d) (i32.const {p}) (i32.const {l}) (i32.const {RESULT})) (call $check)"
        ))
    }

    fn mkdir(&mut self, name: &str) -> &mut Self {
        self.one_name("$mkdir", name)
    }

    fn rmdir(&mut self, name: &str) -> &mut Self {
        self.one_name("$rmdir", name)
    }

    fn unlink(&mut self, name: &str) -> &mut Self {
        self.one_name("$unlink", name)
    }

    fn wat(&self) -> String {
        let Self { data, body, .. } = self;
        let memory = r#"(memory (core memory $memory "memory"))"#;
        let realloc = r#"(realloc (core func $memory "realloc"))"#;
        format!(
            r#"(component
  (import "wasi:io/error@0.2.0" (instance $error (export "error" (type (sub resource)))))
  (alias export $error "error" (type $error-t))
  (import "wasi:io/streams@0.2.0" (instance $streams
    (alias outer 1 $error-t (type $err))
    (export "error" (type $error (eq $err)))
    (export "output-stream" (type $os (sub resource)))
    (type $stream-error (variant (case "last-operation-failed" (own $error)) (case "closed")))
    (export "stream-error" (type $se (eq $stream-error)))
    (export "[method]output-stream.blocking-write-and-flush"
      (func (param "self" (borrow $os)) (param "contents" (list u8)) (result (result (error $se)))))))
  (alias export $streams "output-stream" (type $output-stream))
  (import "wasi:cli/stdout@0.2.0" (instance $stdout
    (alias outer 1 $output-stream (type $os'))
    (export "output-stream" (type $os (eq $os')))
    (export "get-stdout" (func (result (own $os))))))
  (import "wasi:filesystem/types@0.2.0" (instance $types
    (export "descriptor" (type $d (sub resource)))
    (type $error-code (enum "access" "would-block" "already" "bad-descriptor" "busy"
      "deadlock" "quota" "exist" "file-too-large" "illegal-byte-sequence" "in-progress"
      "interrupted" "invalid" "io" "is-directory" "loop" "too-many-links" "message-size"
      "name-too-long" "no-device" "no-entry" "no-lock" "insufficient-memory"
      "insufficient-space" "not-directory" "not-empty" "not-recoverable" "unsupported"
      "no-tty" "no-such-device" "overflow" "not-permitted" "pipe" "read-only"
      "invalid-seek" "text-file-busy" "cross-device"))
    (export "error-code" (type $ec (eq $error-code)))
    (type $path-flags (flags "symlink-follow"))
    (export "path-flags" (type $pf (eq $path-flags)))
    (type $open-flags (flags "create" "directory" "exclusive" "truncate"))
    (export "open-flags" (type $of (eq $open-flags)))
    (type $descriptor-flags (flags "read" "write" "file-integrity-sync" "data-integrity-sync"
      "requested-write-sync" "mutate-directory"))
    (export "descriptor-flags" (type $df (eq $descriptor-flags)))
    (export "[method]descriptor.open-at" (func (param "self" (borrow $d))
      (param "path-flags" $pf) (param "path" string) (param "open-flags" $of)
      (param "flags" $df) (result (result (own $d) (error $ec)))))
    (type $datetime (record (field "seconds" u64) (field "nanoseconds" u32)))
    (export "datetime" (type $dtm (eq $datetime)))
    (type $descriptor-type (enum "unknown" "block-device" "character-device" "directory"
      "fifo" "symbolic-link" "regular-file" "socket"))
    (export "descriptor-type" (type $dt (eq $descriptor-type)))
    (type $descriptor-stat (record (field "type" $dt) (field "link-count" u64)
      (field "size" u64) (field "data-access-timestamp" (option $dtm))
      (field "data-modification-timestamp" (option $dtm))
      (field "status-change-timestamp" (option $dtm))))
    (export "descriptor-stat" (type $ds (eq $descriptor-stat)))
    (export "[method]descriptor.stat-at" (func (param "self" (borrow $d))
      (param "path-flags" $pf) (param "path" string) (result (result $ds (error $ec)))))
    (export "[method]descriptor.read" (func (param "self" (borrow $d))
      (param "length" u64) (param "offset" u64)
      (result (result (tuple (list u8) bool) (error $ec)))))
    (export "[method]descriptor.write" (func (param "self" (borrow $d))
      (param "buffer" (list u8)) (param "offset" u64) (result (result u64 (error $ec)))))
    (export "[method]descriptor.rename-at" (func (param "self" (borrow $d))
      (param "old-path" string) (param "new-descriptor" (borrow $d)) (param "new-path" string)
      (result (result (error $ec)))))
    (export "[method]descriptor.link-at" (func (param "self" (borrow $d))
      (param "old-path-flags" $pf) (param "old-path" string)
      (param "new-descriptor" (borrow $d)) (param "new-path" string)
      (result (result (error $ec)))))
    (export "[method]descriptor.symlink-at" (func (param "self" (borrow $d))
      (param "old-path" string) (param "new-path" string) (result (result (error $ec)))))
    (export "[method]descriptor.create-directory-at" (func (param "self" (borrow $d))
      (param "path" string) (result (result (error $ec)))))
    (export "[method]descriptor.remove-directory-at" (func (param "self" (borrow $d))
      (param "path" string) (result (result (error $ec)))))
    (export "[method]descriptor.unlink-file-at" (func (param "self" (borrow $d))
      (param "path" string) (result (result (error $ec)))))))
  (alias export $types "descriptor" (type $descriptor))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (export "now" (func (result u64)))))
  (import "wasi:filesystem/preopens@0.2.0" (instance $preopens
    (alias outer 1 $descriptor (type $d'))
    (export "descriptor" (type $d (eq $d')))
    (export "get-directories" (func (result (list (tuple (own $d) string)))))))
  (core module $memory
    (memory (export "memory") 2)
    (global $next (mut i32) (i32.const 65536))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      (local.set $at (global.get $next))
      (global.set $next (i32.add (global.get $next) (local.get 3)))
      (local.get $at)))
  (core instance $memory (instantiate $memory))
  (core func $get-stdout (canon lower (func $stdout "get-stdout")))
  (core func $write (canon lower (func $streams "[method]output-stream.blocking-write-and-flush")
    {memory}))
  (core func $get-dirs (canon lower (func $preopens "get-directories") {memory} {realloc}))
  (core func $open-at (canon lower (func $types "[method]descriptor.open-at") {memory}))
  (core func $stat-at (canon lower (func $types "[method]descriptor.stat-at") {memory}))
  (core func $read-at (canon lower (func $types "[method]descriptor.read") {memory} {realloc}))
  (core func $write-at (canon lower (func $types "[method]descriptor.write") {memory}))
  (core func $rename-at (canon lower (func $types "[method]descriptor.rename-at") {memory}))
  (core func $link-at (canon lower (func $types "[method]descriptor.link-at") {memory}))
  (core func $symlink-at (canon lower (func $types "[method]descriptor.symlink-at") {memory}))
  (core func $mkdir (canon lower (func $types "[method]descriptor.create-directory-at") {memory}))
  (core func $rmdir (canon lower (func $types "[method]descriptor.remove-directory-at") {memory}))
  (core func $unlink (canon lower (func $types "[method]descriptor.unlink-file-at") {memory}))
  (core func $drop (canon resource.drop $descriptor))
  (core func $now (canon lower (func $clock "now")))
  (core module $main
    (import "host" "memory" (memory 2))
    (import "host" "get-stdout" (func $get-stdout (result i32)))
    (import "host" "write" (func $write (param i32 i32 i32 i32)))
    (import "host" "get-dirs" (func $get-dirs (param i32)))
    (import "host" "open-at" (func $open-at (param i32 i32 i32 i32 i32 i32 i32)))
    (import "host" "stat-at" (func $stat-at (param i32 i32 i32 i32 i32)))
    (import "host" "read-at" (func $read-at (param i32 i64 i64 i32)))
    (import "host" "write-at" (func $write-at (param i32 i32 i32 i64 i32)))
    (import "host" "rename-at" (func $rename-at (param i32 i32 i32 i32 i32 i32 i32)))
    (import "host" "link-at" (func $link-at (param i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "host" "symlink-at" (func $symlink-at (param i32 i32 i32 i32 i32 i32)))
    (import "host" "mkdir" (func $mkdir (param i32 i32 i32 i32)))
    (import "host" "rmdir" (func $rmdir (param i32 i32 i32 i32)))
    (import "host" "unlink" (func $unlink (param i32 i32 i32 i32)))
    (import "host" "drop" (func $drop (param i32)))
    (import "host" "now" (func $now (result i64)))
    ;; The folder steps work in, and the preopen.
    (global $d (mut i32) (i32.const 0))
    (global $root (mut i32) (i32.const 0))
{data}
    ;; A call's result is not `ok`: trap.
    (func $check
      (if (i32.load8_u (i32.const {RESULT})) (then unreachable)))
    ;; Opens a name under the preopen: the new descriptor.
    (func $open (param $name i32) (param $len i32) (param $oflags i32) (param $flags i32)
      (result i32)
      (call $open-at (global.get $d) (i32.const 0) (local.get $name) (local.get $len)
        (local.get $oflags) (local.get $flags) (i32.const {RESULT}))
      (call $check)
      (i32.load offset=4 (i32.const {RESULT})))
    ;; Creates or truncates a file (create | truncate, write) and writes to it.
    (func $put (param $name i32) (param $len i32) (param $data i32) (param $size i32)
      (local $f i32)
      (local.set $f (call $open (local.get $name) (local.get $len) (i32.const 9) (i32.const 2)))
      (call $write-at (local.get $f) (local.get $data) (local.get $size) (i64.const 0)
        (i32.const {RESULT}))
      (call $check)
      (call $drop (local.get $f)))
    ;; Opens a file for reading and prints it.
    (func $show (param $name i32) (param $len i32)
      (local $f i32)
      (local.set $f (call $open (local.get $name) (local.get $len) (i32.const 0) (i32.const 1)))
      (call $read-at (local.get $f) (i64.const 4096) (i64.const 0) (i32.const {RESULT}))
      (call $check)
      (call $write (call $get-stdout) (i32.load offset=4 (i32.const {RESULT}))
        (i32.load offset=8 (i32.const {RESULT})) (i32.const 0))
      (call $drop (local.get $f)))
    (func (export "run") (result i32)
      (call $get-dirs (i32.const {RESULT}))
      (global.set $root (i32.load (i32.load (i32.const {RESULT}))))
      (global.set $d (global.get $root))
{body}      (i32.const 0)))
  (core instance $host
    (export "memory" (memory $memory "memory"))
    (export "get-stdout" (func $get-stdout))
    (export "write" (func $write))
    (export "get-dirs" (func $get-dirs))
    (export "open-at" (func $open-at))
    (export "stat-at" (func $stat-at))
    (export "read-at" (func $read-at))
    (export "write-at" (func $write-at))
    (export "rename-at" (func $rename-at))
    (export "link-at" (func $link-at))
    (export "symlink-at" (func $symlink-at))
    (export "mkdir" (func $mkdir))
    (export "rmdir" (func $rmdir))
    (export "unlink" (func $unlink))
    (export "drop" (func $drop))
    (export "now" (func $now)))
  (core instance $main (instantiate $main (with "host" (instance $host))))
  (func $run (result (result)) (canon lift (core func $main "run")))
  (instance $cli (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli)))
"#
        )
    }
}

/// A project whose guest is granted `d` (as `.`), holding `d/state` and the
/// folder `d/sub`.
fn project() -> Dir {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.path("d/sub")).expect("mkdir d/sub");
    dir.write("d/state", "0\n");
    dir
}

/// A session on `main.wat` with `d` granted (as `.`) and `extra` flags.
fn session(dir: &Dir, extra: &[&str]) -> LiveWasm {
    let mut args = vec!["--dir", "d::."];
    args.extend(extra);
    args.push("main.wat");
    live_wasm(dir, &args)
}

/// Saves `main.wat` as a component that only prints `text`, and checks that
/// the next run is that save's, number `number`: no run came in between.
fn next_run_is_the_users(dir: &Dir, live: &mut LiveWasm, number: u64, text: &str) {
    dir.write("main.wat", &component_wat::command(text, "", 0));
    live.expect_stdout(text);
    live.expect_run(number, "main.wat changed: ok");
}

#[test]
fn defect_8_a_component_writing_and_renaming_in_a_watched_folder_runs_once() {
    for watcher in [&[][..], &["--poll=50ms"][..]] {
        let dir = project();
        let mut guest = Component::new();
        guest
            .write_stamped("out.txt")
            .write_stamped("tmp")
            .rename("tmp", "state")
            .say("wrote");
        dir.write("main.wat", &guest.wat());
        let mut extra = vec!["--watch", "d"];
        extra.extend(watcher);
        let mut live = session(&dir, &extra);
        live.expect_stdout("wrote");
        live.expect_run(1, "start: ok");
        next_run_is_the_users(&dir, &mut live, 2, "saved");
        dir.write("main.wat", &guest.wat());
        live.expect_stdout("wrote");
        live.expect_run(3, "main.wat changed: ok");
        // A person's save of a file in the watched folder is still a run.
        dir.write_rename("d/state", "user\n");
        live.expect_stdout("wrote");
        live.expect_run(4, "d/state changed: ok");
        next_run_is_the_users(&dir, &mut live, 5, "saved again");
    }
}

#[test]
fn defect_8_a_component_updating_a_file_it_reads_by_rename_runs_once() {
    for watcher in [&[][..], &["--poll=50ms"][..]] {
        let dir = project();
        let mut guest = Component::new();
        guest
            .print_file("state")
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
        dir.write_rename("d/state", "user\n");
        live.expect_stdout("user");
        live.expect_run(4, "d/state changed: ok");
        next_run_is_the_users(&dir, &mut live, 5, "saved again");
    }
}

#[test]
fn defect_8_a_components_links_and_folders_in_a_watched_folder_are_its_own() {
    for watcher in [&[][..], &["--poll=50ms"][..]] {
        let dir = project();
        let mut guest = Component::new();
        guest
            .mkdir("made")
            .write("made/file", "x\n")
            .link("made/file", "hard")
            .symlink("made/file", "soft")
            .unlink("made/file")
            .rmdir("made")
            .unlink("hard")
            .unlink("soft")
            .enter("sub")
            .write_stamped("inner")
            .rename("inner", "moved")
            .leave()
            .say("changed");
        dir.write("main.wat", &guest.wat());
        let mut extra = vec!["--watch", "d"];
        extra.extend(watcher);
        let mut live = session(&dir, &extra);
        live.expect_stdout("changed");
        live.expect_run(1, "start: ok");
        next_run_is_the_users(&dir, &mut live, 2, "saved");
        dir.write("main.wat", &guest.wat());
        live.expect_stdout("changed");
        live.expect_run(3, "main.wat changed: ok");
        next_run_is_the_users(&dir, &mut live, 4, "saved again");
    }
}

#[test]
fn a_file_a_component_reads_is_watched() {
    for watcher in [&[][..], &["--poll=50ms"][..]] {
        let dir = project();
        dir.write("d/data.txt", "first\n");
        let mut guest = Component::new();
        guest.print_file("data.txt");
        dir.write("main.wat", &guest.wat());
        let mut live = session(&dir, watcher);
        live.expect_stdout("first");
        live.expect_run(1, "start: ok");
        dir.write("d/data.txt", "second\n");
        live.expect_stdout("second");
        live.expect_run(2, "d/data.txt changed: ok");
        dir.write_rename("d/data.txt", "third\n");
        live.expect_stdout("third");
        live.expect_run(3, "d/data.txt changed: ok");
    }
}

#[test]
fn a_file_a_component_looked_for_is_watched() {
    for watcher in [&[][..], &["--poll=50ms"][..]] {
        let dir = project();
        let mut guest = Component::new();
        guest
            .print_whether("later.txt")
            .print_whether("sub/there.txt");
        dir.write("d/sub/there.txt", "here\n");
        dir.write("main.wat", &guest.wat());
        let mut live = session(&dir, watcher);
        live.expect_stdout("missing");
        live.expect_stdout("found");
        live.expect_run(1, "start: ok");
        dir.write("d/later.txt", "now\n");
        live.expect_stdout("found");
        live.expect_run(2, "d/later.txt changed: ok");
        dir.write("d/sub/there.txt", "changed\n");
        live.expect_run(3, "d/sub/there.txt changed: ok");
    }
}
