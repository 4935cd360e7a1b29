//! Words that stay true: every repository path that a comment, `Cargo.toml` or
//! a README names exists.
//!
//! A file that moves leaves behind the words that named it, and nothing else
//! notices. This reads the repository's prose (comments and doc comments of
//! the Rust sources, `Cargo.toml`, the READMEs, the CI scripts' comments),
//! picks out what looks like a path into the repository (`src/…`, `tests/…`,
//! `fuzz/…`, or a room's file such as `watch/poll.rs`) or a module path
//! (`session::run`, `crate::watch::poll`), and asserts that each one is there.

use std::fs;
use std::path::{Path, PathBuf};

/// The folders a path into the repository starts with.
const ROOTS: &[&str] = &[
    "src",
    "tests",
    "benches",
    "guest-examples",
    "wit",
    "fuzz",
    ".ci",
];

/// Folders that are built, downloaded or generated, not written: never read
/// and never named as sources.
const NOT_SOURCES: &[&str] = &["target", "node_modules", ".toolchains", ".git", "corpus"];

/// Which part of a file is prose.
#[derive(Clone, Copy)]
enum Prose {
    /// Rust: what follows `//` (comments and doc comments).
    RustComments,
    /// Shell: what follows `#`.
    HashComments,
    /// Markdown and `Cargo.toml`: every line (a manifest's paths must exist too).
    Everything,
}

/// What the words named, file after file.
#[derive(Default)]
struct Findings {
    /// How many paths and module paths were checked.
    checked: usize,
    /// `file:line: name` for each one that does not exist.
    missing: Vec<String>,
}

#[test]
fn every_path_the_words_name_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut findings = Findings::default();
    for (file, prose) in prose_files(root) {
        let text = fs::read_to_string(root.join(&file)).expect("read a source file");
        check_text(root, &file, &text, prose, &mut findings);
    }
    assert!(
        findings.missing.is_empty(),
        "{} of {} paths named in comments, Cargo.toml and READMEs do not exist:\n{}",
        findings.missing.len(),
        findings.checked,
        findings.missing.join("\n")
    );
    // Fewer would mean the scan lost its way (a folder renamed, a rule broken),
    // not that the words got better.
    assert!(
        findings.checked >= 50,
        "only {} path mentions found: the scan is missing files",
        findings.checked
    );
}

#[test]
fn a_missing_path_is_reported_with_where_it_was_named() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A shell script's comments, so that this file's own comments name
    // nothing missing.
    let sample = "\
# See `src/lib.rs`, `watch/poll.rs`, the room `report/status` and `session::run`.
# Gone: `src/no_such_room.rs`, watch/nowhere.rs, and `session::no_such_item`.
# Not paths into the repo: https://example.com/src/x.rs, wasi:cli/run,
# /tmp/src/x.rs, target/debug/x.rs, `src/*.rs`, tests/e2e/N.rs, fuzz/crash-…
not_a_comment=src/missing.rs
";
    let mut findings = Findings::default();
    check_text(
        root,
        Path::new(".ci/sample"),
        sample,
        Prose::HashComments,
        &mut findings,
    );
    assert_eq!(
        findings.missing,
        [
            ".ci/sample:2: src/no_such_room.rs",
            ".ci/sample:2: watch/nowhere.rs",
            ".ci/sample:2: session::no_such_item",
        ]
    );
    assert_eq!(findings.checked, 7, "four present, three missing");
}

/// The files whose words are checked, relative to the repository root.
fn prose_files(root: &Path) -> Vec<(PathBuf, Prose)> {
    let mut files = vec![
        (PathBuf::from("Cargo.toml"), Prose::Everything),
        (PathBuf::from("build.rs"), Prose::RustComments),
        (PathBuf::from("fuzz/README.md"), Prose::Everything),
        (PathBuf::from("wit/README.md"), Prose::Everything),
    ];
    for entry in fs::read_dir(root).expect("read the repository root") {
        let name = PathBuf::from(entry.expect("a root entry").file_name());
        if name.extension().is_some_and(|ext| ext == "md") {
            files.push((name, Prose::Everything));
        }
    }
    for entry in fs::read_dir(root.join(".ci")).expect("read .ci") {
        let name = entry.expect("a .ci entry").file_name();
        files.push((Path::new(".ci").join(name), Prose::HashComments));
    }
    for folder in ["src", "tests", "benches", "fuzz/fuzz_targets"] {
        walk(root, Path::new(folder), &mut |file| {
            if file.extension().is_some_and(|ext| ext == "rs") {
                files.push((file.to_path_buf(), Prose::RustComments));
            }
        });
    }
    walk(root, Path::new("guest-examples"), &mut |file| {
        if file.file_name().is_some_and(|name| name == "README.md") {
            files.push((file.to_path_buf(), Prose::Everything));
        }
    });
    files
}

/// Calls `each` with every file under `folder` (relative to `root`), skipping
/// what is built or downloaded.
fn walk(root: &Path, folder: &Path, each: &mut dyn FnMut(&Path)) {
    let Ok(entries) = fs::read_dir(root.join(folder)) else {
        return;
    };
    for entry in entries {
        let entry = entry.expect("a folder entry");
        let name = entry.file_name();
        if NOT_SOURCES.iter().any(|skip| name == *skip) {
            continue;
        }
        let path = folder.join(&name);
        if entry.file_type().expect("a file type").is_dir() {
            walk(root, &path, each);
        } else {
            each(&path);
        }
    }
}

/// Checks every path and module path named in the prose of `text`, the
/// contents of `file`.
fn check_text(root: &Path, file: &Path, text: &str, prose: Prose, findings: &mut Findings) {
    let bases = bases(root, file);
    for (index, line) in text.lines().enumerate() {
        let words = match prose {
            Prose::RustComments => line.find("//").map(|at| &line[at..]),
            Prose::HashComments => line.find('#').map(|at| &line[at..]),
            Prose::Everything => Some(line),
        };
        let Some(words) = words else { continue };
        let mut report = |name: &str, exists: bool| {
            findings.checked += 1;
            if !exists {
                let at = format!("{}:{}: {name}", file.display(), index + 1);
                findings.missing.push(at);
            }
        };
        for (name, before, after) in tokens(words, is_path_char) {
            if let Some(path) = repository_path(root, name, before, after) {
                report(path, path_exists(&bases, path));
            }
        }
        for (name, before, _) in tokens(words, is_module_path_char) {
            if let Some(exists) = module_path_exists(root, file, name, before) {
                report(name, exists);
            }
        }
    }
}

/// The folders a relative path in `file` may be relative to: its own folder
/// and every folder above it (a guest's README names `src/main.rs`, its own),
/// the folder of a Rust file's submodules, and `src/` (where `watch/poll.rs`
/// lives).
fn bases(root: &Path, file: &Path) -> Vec<PathBuf> {
    let mut bases = Vec::new();
    if file.extension().is_some_and(|ext| ext == "rs") {
        bases.push(root.join(file.with_extension("")));
    }
    let mut folder = file.parent();
    while let Some(here) = folder {
        bases.push(root.join(here));
        folder = here.parent();
    }
    bases.push(root.join("src"));
    bases
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_./-*".contains(c)
}

fn is_module_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_:".contains(c)
}

/// The maximal runs of `part` characters in `words`, each with the
/// characters just before and after it.
fn tokens(words: &str, part: fn(char) -> bool) -> Vec<(&str, char, char)> {
    let mut found = Vec::new();
    let mut start = None;
    for (at, c) in words.char_indices().chain([(words.len(), ' ')]) {
        match (start, part(c) && at < words.len()) {
            (None, true) => start = Some(at),
            (Some(from), false) => {
                let before = words[..from].chars().next_back().unwrap_or(' ');
                found.push((&words[from..at], before, c));
                start = None;
            }
            _ => {}
        }
    }
    found
}

/// `name` as a path into the repository, or `None` when it is not one: a
/// URL or a WIT name (after `:`), an absolute path, a glob, a placeholder
/// (`N`, `PID`, `crash-…`), something built, or a path that starts nowhere
/// in the repository (`data/in`, a guest's own).
fn repository_path<'a>(root: &Path, name: &'a str, before: char, after: char) -> Option<&'a str> {
    if ":@$~{<%\\".contains(before) || after == '…' {
        return None;
    }
    let name = name.strip_prefix("./").unwrap_or(name);
    let name = name.trim_end_matches(['.', ',', ':', ';']);
    if !name.contains('/')
        || name.starts_with('/')
        || name.contains('*')
        || name.contains("..")
        || name.contains("//")
        || name.ends_with('-')
    {
        return None;
    }
    let segments: Vec<&str> = name.split('/').filter(|s| !s.is_empty()).collect();
    let first = *segments.first()?;
    if NOT_SOURCES.contains(&first) || segments.iter().any(|s| is_placeholder(s)) {
        return None;
    }
    let rooted = ROOTS.contains(&first);
    // `watch/poll.rs`: a Rust file, relative to a base.
    let rust_file = name.ends_with(".rs")
        && segments
            .iter()
            .all(|s| s.trim_end_matches(".rs").chars().all(is_module_char));
    // `report/`, `report/status`: a room with a folder of its own, in `src/`.
    let room = root.join("src").join(first).is_dir();
    (rooted || rust_file || room).then_some(name)
}

/// `N`, `PID`, `TARGET`, `N.rs`: a stand-in, not a name. Capitals that are a
/// name carry an extension (`README.md`).
fn is_placeholder(segment: &str) -> bool {
    let (stem, extension) = segment.split_once('.').unwrap_or((segment, ""));
    stem.chars().any(|c| c.is_ascii_uppercase())
        && stem
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && (extension.is_empty() || stem.len() == 1)
}

fn is_module_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

/// Whether `name` exists beneath one of `bases`, as written or (a room named
/// without its extension, `report/status`) as a `.rs` file.
fn path_exists(bases: &[PathBuf], name: &str) -> bool {
    bases.iter().any(|base| {
        let path = base.join(name);
        path.exists() || (path.extension().is_none() && path.with_extension("rs").is_file())
    })
}

/// For a module path of this crate (`crate::watch::poll`, `session::run`,
/// `huge_pages::move_code`), whether it exists: each module a file, and the
/// first segment that is not one an item that module defines. `None` when
/// `name` is not a path into this crate (`std::fs`, `wasmtime::Config`).
fn module_path_exists(root: &Path, file: &Path, name: &str, before: char) -> Option<bool> {
    if before == ':' || !name.contains("::") {
        return None;
    }
    let segments: Vec<&str> = name.trim_end_matches(':').split("::").collect();
    let (first, rest) = segments.split_first()?;
    if ["core", "std", "alloc", "self", "super", "lib", "main"].contains(first) {
        return None;
    }
    // A path is written from the file's own module or one above it, as `use`
    // lines and doc links write them; any of those that has the first module
    // may be the one meant.
    let starts: Vec<PathBuf> = if ["crate", "live_wasm"].contains(first) {
        vec![root.join("src/lib.rs")]
    } else if file.starts_with("src") {
        bases(root, file)
            .iter()
            .filter(|base| base.starts_with(root.join("src")))
            .filter_map(|base| module_file(base, first))
            .collect()
    } else {
        module_file(&root.join("src"), first).into_iter().collect()
    };
    if starts.is_empty() {
        return None;
    }
    Some(starts.into_iter().any(|start| item_exists(start, rest)))
}

/// Whether `rest` names, from `module` down, modules that are files and then
/// (if anything is left) an item the last of them defines.
fn item_exists(mut module: PathBuf, rest: &[&str]) -> bool {
    for segment in rest {
        if segment.is_empty() {
            break;
        }
        if let Some(child) = module_file(&children(&module), segment) {
            module = child;
            continue;
        }
        return fs::read_to_string(&module).is_ok_and(|text| defines(&text, segment));
    }
    true
}

/// The file of module `name` in folder `base`.
fn module_file(base: &Path, name: &str) -> Option<PathBuf> {
    let file = base.join(format!("{name}.rs"));
    let folder = base.join(name).join("mod.rs");
    [file, folder].into_iter().find(|path| path.is_file())
}

/// The folder of `module`'s submodules.
fn children(module: &Path) -> PathBuf {
    match module.file_name().and_then(|name| name.to_str()) {
        Some("lib.rs" | "mod.rs" | "main.rs") => module.parent().unwrap_or(module).to_path_buf(),
        _ => module.with_extension(""),
    }
}

/// Whether a module's source defines `item` (a function, type, constant,
/// inline module or macro) or re-exports it.
fn defines(text: &str, item: &str) -> bool {
    let keywords = [
        "fn",
        "mod",
        "struct",
        "enum",
        "trait",
        "type",
        "const",
        "static",
        "macro_rules!",
    ];
    text.lines().any(|line| {
        let words: Vec<&str> = line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '!'))
            .filter(|w| !w.is_empty())
            .collect();
        let defined = words
            .windows(2)
            .any(|pair| keywords.contains(&pair[0]) && pair[1] == item);
        let reexported = line.trim_start().starts_with("pub use") && words.contains(&item);
        defined || reexported
    })
}
