//! Compiled code kept across runs, keyed by file and content hash, and across
//! sessions on disk ([`disk`]).
//!
//! A save recompiles only the files whose bytes changed. One entry per file,
//! holding its current version and the one before: an undo (or a rebuild giving
//! the bytes of two saves ago) is not compiled again, and memory stays flat
//! over thousands of saves.
//! An entry holds either kind of wasm ([`Artifact`]): which one is decided from
//! the bytes, so one save can turn a module file into a component. A component's
//! big core modules are compiled and kept on their own, by their own bytes
//! ([`split`]): a rebuild that changed one of them compiles only that one.

mod disk;
mod split;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use rayon::prelude::*;
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use crate::progress::{FirstCompile, Ongoing, Progress, What};
use crate::source::{self, ContentHash, Fingerprint, Kind};
pub(crate) use disk::{DiskCache, distrust};
pub(crate) use split::is_part;

/// The compile cache of a session.
#[derive(Default)]
pub(crate) struct ModuleCache {
    modules: HashMap<PathBuf, Entry>,
    disk: Option<DiskCache>,
    /// Compiled since the last [`Self::after_run`]: written to disk after
    /// the run, off the path from a save to the guest's output.
    unsaved: Vec<(disk::Key, Artifact)>,
    /// Code a newer version replaced: dropped after the run too (unmapping
    /// and unregistering code is ~50 us after a pause).
    replaced: Vec<Artifact>,
    /// The core modules taken out of components, by the name the shells
    /// import them by (which holds the hash of their bytes): what the
    /// entries' components import, and what was compiled since the last run.
    parts: HashMap<String, Module>,
    /// Where a compile that takes long is said, and the root its files are
    /// named from.
    progress: Option<(Arc<Progress>, PathBuf)>,
}

struct Entry {
    stamp: Option<Stamp>,
    hash: ContentHash,
    artifact: Artifact,
    /// The version this one replaced.
    previous: Option<(ContentHash, Artifact)>,
}

/// Compiled code of either kind, ready to instantiate.
#[derive(Clone)]
pub(crate) enum Artifact {
    /// A core module.
    Module(Module),
    /// A component.
    Component(Component),
}

impl Artifact {
    /// Compiles `wasm` as the kind its bytes say it is.
    fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Artifact> {
        crate::engine::compile(wasm.len(), || {
            Ok(match Kind::of(wasm) {
                Kind::Module => Artifact::Module(Module::new(engine, wasm)?),
                Kind::Component => Artifact::Component(Component::new(engine, wasm)?),
            })
        })
    }

    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        match self {
            Artifact::Module(module) => module.serialize(),
            Artifact::Component(component) => component.serialize(),
        }
    }
}

/// A file's fingerprint, when it can be trusted to change with its bytes: if
/// none of it changed, neither did the bytes, and a big unchanged dependency is
/// not even read.
///
/// File times are coarse (a clock tick, milliseconds): two same-size saves in
/// one tick look alike. So, as git does for its index, a fingerprint is only
/// trusted when the file was last modified well before it was taken; a file
/// saved moments ago is read and hashed again (it is small: it is being edited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp(Fingerprint);

/// How much older than its stamp a file must be for the stamp to be trusted:
/// many clock ticks, so a later write is sure to show a newer time.
const SETTLED: Duration = Duration::from_millis(100);

impl Stamp {
    /// The open file's stamp, if it can be trusted to change with its bytes.
    fn of(file: &File) -> Option<Stamp> {
        let taken = SystemTime::now();
        let print = Fingerprint::of_metadata(&file.metadata().ok()?)?;
        (print.modified.max(print.changed) + SETTLED <= taken).then_some(Stamp(print))
    }
}

/// Compiled code ready to instantiate, and whether the cache already had it.
pub(crate) struct Loaded {
    /// The compiled module or component.
    pub artifact: Artifact,
    /// The hash of the bytes it was compiled from.
    pub hash: ContentHash,
    /// True when nothing was compiled.
    pub cache_hit: bool,
}

impl ModuleCache {
    /// A cache in memory, and on `disk` too when given.
    pub(crate) fn new(disk: Option<DiskCache>) -> Self {
        Self {
            modules: HashMap::new(),
            disk,
            unsaved: Vec::new(),
            replaced: Vec::new(),
            parts: HashMap::new(),
            progress: None,
        }
    }

    /// The core module a split component imports as `name` (see [`split`]),
    /// when a component loaded through this cache imports it.
    pub(crate) fn part(&self, name: &str) -> Option<Module> {
        self.parts.get(name).cloned()
    }

    /// Says compiles on `progress`, naming files from `root`.
    pub(crate) fn show_progress(mut self, progress: Arc<Progress>, root: &Path) -> Self {
        self.progress = Some((progress, root.to_path_buf()));
        self
    }

    /// A compile of `wasm_len` bytes from `path` begins: a stage of the
    /// progress line, until dropped.
    fn compiling(&self, path: &Path, wasm_len: usize) -> Option<Ongoing> {
        let (progress, root) = self.progress.as_ref()?;
        let first = match (self.modules.contains_key(path), self.disk.is_some()) {
            (true, _) => None,
            (false, true) => Some(FirstCompile::Cached),
            (false, false) => Some(FirstCompile::Uncached),
        };
        Some(progress.begin(What::Compile {
            file: crate::names::relative(root, path),
            bytes: wasm_len,
            first,
        }))
    }

    /// What is kept off the path from a save to the guest's output, for when
    /// the run has reported: writes what was compiled since the last call to
    /// the disk cache, and drops the code newer versions replaced, and the
    /// modules no kept component imports.
    pub(crate) fn after_run(&mut self) {
        self.replaced.clear();
        let imported: HashSet<String> = self
            .modules
            .values()
            .flat_map(|entry| {
                std::iter::once(&entry.artifact).chain(entry.previous.as_ref().map(|(_, a)| a))
            })
            .filter_map(|artifact| match artifact {
                Artifact::Component(component) => Some(component),
                Artifact::Module(_) => None,
            })
            .flat_map(|component| {
                let engine = component.engine();
                component
                    .component_type()
                    .imports(engine)
                    .filter(|(name, _)| split::is_part(name))
                    .map(|(name, _)| name.to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        self.parts.retain(|name, _| imported.contains(name));
        let Some(disk) = &mut self.disk else { return };
        for (key, artifact) in self.unsaved.drain(..) {
            disk.save(key, &artifact);
        }
    }

    /// Reads `file` (opened from `path`) and returns its compiled code,
    /// compiling only if its bytes changed since the last call (and are not in
    /// the disk cache). A file whose stamp has not changed is not even read.
    pub(crate) fn load(&mut self, engine: &Engine, path: &Path, file: &File) -> Result<Loaded> {
        let stamp = Stamp::of(file);
        if let Some(entry) = self.modules.get(path)
            && stamp.is_some()
            && entry.stamp == stamp
        {
            return Ok(entry.hit());
        }
        let bytes = source::read(file, path)?;
        let hash = source::content_hash(&bytes);
        if let Some(entry) = self.modules.get_mut(path)
            && (entry.hash == hash || entry.back_to_previous(hash))
        {
            entry.stamp = stamp;
            return Ok(entry.hit());
        }
        let wasm = source::to_wasm(path, &bytes)?;
        // A compile that takes long is said (a disk-cache hit is quick).
        let compiling = self.compiling(path, wasm.len());
        let (artifact, cache_hit) = match self.load_split(engine, &wasm) {
            Some(loaded) => loaded,
            None => self.load_whole(engine, &wasm).map_err(|err| {
                if err.is::<Nesting>() {
                    anyhow::Error::from(err).context(format!("{}: invalid module", path.display()))
                } else {
                    invalid(path, &bytes, &wasm, err)
                }
            })?,
        };
        drop(compiling);
        let previous = self.modules.remove(path).map(|replaced| {
            if let Some((_, older)) = replaced.previous {
                self.replaced.push(older);
            }
            (replaced.hash, replaced.artifact)
        });
        let entry = Entry {
            stamp,
            hash,
            artifact: artifact.clone(),
            previous,
        };
        self.modules.insert(path.to_path_buf(), entry);
        Ok(Loaded {
            artifact,
            hash,
            cache_hit,
        })
    }
}

impl ModuleCache {
    /// `wasm` compiled as it is, from disk if it is there; and whether it was.
    fn load_whole(&mut self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<(Artifact, bool)> {
        let (key, from_disk) = self.on_disk(engine, wasm);
        if let Some(artifact) = from_disk {
            return Ok((artifact, true));
        }
        source::check_nesting(wasm).map_err(|err| wasmtime::Error::new(Nesting(err)))?;
        let artifact = Artifact::compile(engine, wasm)?;
        if let Some(key) = key {
            self.unsaved.push((key, artifact.clone()));
        }
        Ok((artifact, false))
    }

    /// `wasm`'s key in the disk cache, and its code from there if it is there.
    fn on_disk(&self, engine: &Engine, wasm: &[u8]) -> (Option<disk::Key>, Option<Artifact>) {
        let Some(disk) = &self.disk else {
            return (None, None);
        };
        let key = disk.key(wasm);
        (Some(key), disk.load(engine, Kind::of(wasm), key))
    }

    /// `wasm`, a component with big core modules, as its shell and those
    /// modules, each compiled or loaded on its own (see [`split`]); and whether
    /// nothing was compiled. `None` when it is not split, or its shell does
    /// not compile: then it is compiled whole, which says what is wrong.
    fn load_split(&mut self, engine: &Engine, wasm: &[u8]) -> Option<(Artifact, bool)> {
        if Kind::of(wasm) != Kind::Component {
            return None;
        }
        let split = split::split(wasm)?;
        // The modules neither memory nor disk has are compiled together, their
        // functions shared out over the compile threads as in a whole compile.
        let mut missing = Vec::new();
        for part in &split.parts {
            if self.parts.contains_key(&part.name) {
                continue;
            }
            let bytes = &wasm[part.range.clone()];
            match self.on_disk(engine, bytes) {
                (_, Some(Artifact::Module(module))) => {
                    self.parts.insert(part.name.clone(), module);
                }
                (_, Some(Artifact::Component(_))) => return None,
                (key, None) => missing.push((part, bytes, key)),
            }
        }
        let compiled: Vec<wasmtime::Result<Module>> = {
            let size = missing.iter().map(|(_, bytes, _)| bytes.len()).sum();
            crate::engine::compile(size, || {
                missing
                    .par_iter()
                    .map(|(_, bytes, _)| {
                        source::check_nesting(bytes).map_err(wasmtime::Error::msg)?;
                        Module::new(engine, bytes)
                    })
                    .collect()
            })
        };
        let cache_hit = missing.is_empty();
        for ((part, _, key), module) in missing.into_iter().zip(compiled) {
            // The whole compile says what is wrong.
            let module = module.ok()?;
            if let Some(key) = key {
                self.unsaved.push((key, Artifact::Module(module.clone())));
            }
            self.parts.insert(part.name.clone(), module);
        }
        let (shell, hit) = self.load_whole(engine, &split.shell).ok()?;
        Some((shell, cache_hit && hit))
    }
}

/// A component nested past what is checked before compiling it.
#[derive(Debug)]
struct Nesting(anyhow::Error);

impl std::fmt::Display for Nesting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for Nesting {}

/// A compile error, pointing into the `.wat` text when it is one.
fn invalid(path: &Path, bytes: &[u8], wasm: &[u8], err: wasmtime::Error) -> anyhow::Error {
    if !bytes.starts_with(b"\0asm")
        && let Ok(text) = std::str::from_utf8(bytes)
        && let Some(located) = source::locate_invalid(path, text, wasm)
    {
        return anyhow::Error::new(located);
    }
    anyhow::Error::from(err).context(format!("{}: invalid module", path.display()))
}

impl Entry {
    /// Makes the previous version current again if it has `hash`.
    fn back_to_previous(&mut self, hash: ContentHash) -> bool {
        let Some((previous_hash, previous)) = self.previous.take_if(|(h, _)| *h == hash) else {
            return false;
        };
        let current = std::mem::replace(&mut self.artifact, previous);
        self.previous = Some((std::mem::replace(&mut self.hash, previous_hash), current));
        true
    }

    fn hit(&self) -> Loaded {
        Loaded {
            artifact: self.artifact.clone(),
            hash: self.hash,
            cache_hit: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> File {
        File::open(path).expect("open")
    }

    /// Opens `path` and loads it, as a run does.
    fn load(cache: &mut ModuleCache, engine: &Engine, path: &Path) -> Result<Loaded> {
        cache.load(engine, path, &open(path))
    }

    fn on_disk(dir: &Path, engine: &Engine) -> DiskCache {
        DiskCache::new(dir.to_path_buf(), u64::MAX, engine)
    }

    #[test]
    fn unchanged_bytes_and_the_version_before_hit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.wat");
        let engine = Engine::default();
        let mut cache = ModuleCache::default();

        std::fs::write(&path, "(module)").expect("write");
        assert!(!load(&mut cache, &engine, &path).expect("first").cache_hit);
        assert!(load(&mut cache, &engine, &path).expect("second").cache_hit);

        std::fs::write(&path, "(module (func))").expect("write");
        assert!(!load(&mut cache, &engine, &path).expect("changed").cache_hit);
        assert_eq!(cache.modules.len(), 1);

        // An undo and a redo: both versions are at hand.
        std::fs::write(&path, "(module)").expect("write");
        assert!(load(&mut cache, &engine, &path).expect("undo").cache_hit);
        std::fs::write(&path, "(module (func))").expect("write");
        assert!(load(&mut cache, &engine, &path).expect("redo").cache_hit);
        // Only two are kept.
        std::fs::write(&path, "(module (memory 1))").expect("write");
        assert!(!load(&mut cache, &engine, &path).expect("third").cache_hit);
        std::fs::write(&path, "(module)").expect("write");
        assert!(!load(&mut cache, &engine, &path).expect("gone").cache_hit);
    }

    #[test]
    fn code_a_save_replaces_is_dropped_after_the_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.wat");
        let engine = Engine::default();
        let mut cache = ModuleCache::default();
        for text in ["(module $a)", "(module $b)", "(module $c)"] {
            std::fs::write(&path, text).expect("write");
            assert!(
                !load(&mut cache, &engine, &path)
                    .expect("compiled")
                    .cache_hit
            );
        }
        // The third version pushed the first out of the cache, not yet out
        // of memory.
        assert_eq!(cache.replaced.len(), 1);
        cache.after_run();
        assert!(cache.replaced.is_empty());
    }

    #[test]
    fn only_settled_files_are_trusted_by_stamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.wat");
        std::fs::write(&path, "(module $a)").expect("write");
        assert_eq!(Stamp::of(&open(&path)), None, "just saved: read it again");

        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let set_old_mtime = |path: &Path| {
            let file = std::fs::File::options()
                .write(true)
                .open(path)
                .expect("open");
            file.set_modified(an_hour_ago).expect("set mtime");
        };
        set_old_mtime(&path);
        // Setting the time changed the inode just now: wait for that to settle.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Stamp::of(&open(&path)).is_none() {
            assert!(std::time::Instant::now() < deadline, "never settled");
            std::thread::sleep(Duration::from_millis(10));
        }

        let engine = Engine::default();
        let mut cache = ModuleCache::default();
        assert!(!load(&mut cache, &engine, &path).expect("first").cache_hit);
        let name = |loaded: Loaded| match loaded.artifact {
            Artifact::Module(module) => module.name().map(str::to_owned),
            Artifact::Component(_) => None,
        };
        assert_eq!(
            name(load(&mut cache, &engine, &path).expect("hit")),
            Some("a".into())
        );

        // Same size, same old mtime: the fresh change time says "read it again".
        std::fs::write(&path, "(module $b)").expect("write");
        set_old_mtime(&path);
        let reloaded = load(&mut cache, &engine, &path).expect("changed");
        assert!(!reloaded.cache_hit);
        assert_eq!(name(reloaded), Some("b".into()));
    }

    #[test]
    fn components_are_cached_like_modules_and_the_kind_follows_the_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.wat");
        let disk = dir.path().join("cache");
        let engine = Engine::default();
        let mut cache = ModuleCache::new(Some(on_disk(&disk, &engine)));

        std::fs::write(&path, "(component)").expect("write");
        let first = load(&mut cache, &engine, &path).expect("compiled");
        assert!(matches!(first.artifact, Artifact::Component(_)) && !first.cache_hit);
        cache.after_run();
        let again = load(
            &mut ModuleCache::new(Some(on_disk(&disk, &engine))),
            &engine,
            &path,
        );
        assert!(again.expect("from disk").cache_hit);

        // One save turns it into a module: the entry is replaced.
        std::fs::write(&path, "(module)").expect("write");
        let module = load(&mut cache, &engine, &path).expect("compiled");
        assert!(matches!(module.artifact, Artifact::Module(_)) && !module.cache_hit);
        assert_eq!(cache.modules.len(), 1);
    }

    /// A component embedding a module big enough to be split, whose
    /// function `f` returns `value`.
    fn big_component(value: u32) -> String {
        let padding = "\\00".repeat(split::SPLIT_FROM);
        format!(
            r#"(component
                 (core module $m (memory 2) (data (i32.const 0) "{padding}")
                   (func (export "f") (result i32) i32.const {value}))
                 (core instance (instantiate $m)))"#
        )
    }

    #[test]
    fn a_components_parts_are_kept_while_a_kept_version_imports_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.wat");
        let engine = Engine::default();
        let mut cache = ModuleCache::default();
        let mut names = Vec::new();
        for value in 1..=3 {
            std::fs::write(&path, big_component(value)).expect("write");
            assert!(
                !load(&mut cache, &engine, &path)
                    .expect("compiled")
                    .cache_hit
            );
            cache.after_run();
            let mut now: Vec<String> = cache.parts.keys().cloned().collect();
            now.sort();
            names.push(now);
        }
        assert_eq!(names[0].len(), 1);
        assert_eq!(names[1].len(), 2, "this version's and the one before");
        assert!(!names[2].contains(&names[0][0]), "the first is gone");
        assert!(cache.part(&names[0][0]).is_none());
    }

    #[test]
    fn a_new_session_loads_compiled_modules_from_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.wat");
        let disk = dir.path().join("cache");
        let engine = Engine::default();
        std::fs::write(&path, "(module (func (export \"f\")))").expect("write");

        let mut first = ModuleCache::new(Some(on_disk(&disk, &engine)));
        assert!(
            !load(&mut first, &engine, &path)
                .expect("compiled")
                .cache_hit
        );
        assert!(!disk.exists(), "written after the run, not during it");
        first.after_run();
        assert_eq!(std::fs::read_dir(&disk).expect("cache dir").count(), 1);

        let second = load(
            &mut ModuleCache::new(Some(on_disk(&disk, &engine))),
            &engine,
            &path,
        );
        let second = second.expect("loaded");
        assert!(second.cache_hit);
        assert!(matches!(second.artifact, Artifact::Module(m) if m.get_export("f").is_some()));

        // A corrupt file is recompiled, not trusted.
        for entry in std::fs::read_dir(&disk).expect("cache dir") {
            std::fs::write(entry.expect("entry").path(), b"junk").expect("corrupt");
        }
        let third = load(
            &mut ModuleCache::new(Some(on_disk(&disk, &engine))),
            &engine,
            &path,
        );
        assert!(!third.expect("recompiled").cache_hit);
    }
}
