//! Compiled code kept across sessions in a folder: the user's cache folder by
//! default, so the second session of a 26 MB interpreter starts in a blink.
//!
//! One file per compiled module or component, `<key>.cwasm`: the key hashes the
//! wasm bytes and everything that changes the machine code (wasmtime's version
//! and the engine's settings). Files are written under a temporary name and
//! renamed, so a reader (this session or another at once) sees all of a file or
//! none. Each file is wasmtime's compiled code followed by a trailer repeating
//! its key and giving the length and checksum of the code: a truncated, damaged
//! or foreign file fails the check, is compiled again and rewritten, and is
//! never handed to wasmtime as code. A checked entry is mapped, not copied:
//! wasmtime runs the code from the file's pages, so a 40 MB interpreter loads
//! in milliseconds. The folder is bounded: past its budget the entries used
//! least recently go (a hit refreshes the file's modification time).
//!
//! The entries are code this process runs natively, so the folder is trusted
//! like our binary, and only when no one else could have written it: a folder
//! someone else owns, or their group or others may write, is not used at all
//! (see [`distrust`]: the session says why and runs without it); an entry not
//! owned by us, writable by group or others, or a symlink, is not loaded
//! (checked through the descriptor that is then mapped, so the file checked is
//! the file run). The trailer's checksum only catches damage, not forgery.
//! Those checks are Unix's (owners and modes): on Windows no folder is
//! trusted, and there is no disk cache (`cache/disk/private.rs`).

use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use wasmtime::Engine;
use wasmtime::component::Component;
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use super::Artifact;
use crate::source::Kind;

mod private;

pub(crate) use private::distrust;
use private::{create_private_dir, open_own_entry};

/// What every entry ends with: the format, and its version.
const MAGIC: &[u8; 8] = b"lwcache2";
/// Key, code length, code checksum, magic.
const TRAILER: usize = 16 + 8 + 16 + 8;
/// A temporary file this old was left by a session that died while writing.
const STALE: Duration = Duration::from_secs(3600);

/// The on-disk cache of one session.
pub(crate) struct DiskCache {
    dir: PathBuf,
    budget: u64,
    /// Hash of wasmtime's version and the engine's settings.
    engine: u64,
    /// How many bytes the folder holds, as far as this session knows (`None`
    /// until it first looks): a look, and evictions, when it passes the budget.
    held: Option<u64>,
}

/// The name of a compiled wasm binary in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key(u128);

impl DiskCache {
    /// A cache in `dir` (created when first written) of at most `budget` bytes,
    /// for code compiled by `engine`.
    pub(crate) fn new(dir: PathBuf, budget: u64, engine: &Engine) -> Self {
        let mut hasher = Xxh3::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            budget,
            engine: hasher.finish(),
            held: None,
        }
    }

    /// The key of `wasm` compiled by this cache's engine.
    pub(crate) fn key(&self, wasm: &[u8]) -> Key {
        let mut hasher = Xxh3::new();
        hasher.update(&self.engine.to_le_bytes());
        hasher.update(wasm);
        Key(hasher.digest128())
    }

    fn file(&self, key: Key) -> PathBuf {
        self.dir.join(format!("{:032x}.cwasm", key.0))
    }

    /// The compiled code of `key`, if the cache holds an intact entry for it.
    pub(crate) fn load(&self, engine: &Engine, kind: Kind, key: Key) -> Option<Artifact> {
        let mut file = open_own_entry(&self.file(key))?;
        if !is_whole(&mut file, key) {
            return None;
        }
        // Least recently used goes first: a hit makes the entry young again
        // (the owner may set the times through a read-only descriptor).
        let _ = file.set_modified(SystemTime::now());
        // SAFETY: the file holds what `save` wrote for this key: its trailer
        // repeats the key (hash of the wasm and of this engine's settings) and the
        // checksum of the code matched, so it is not truncated, damaged or
        // another file. wasmtime checks its own header too and refuses another
        // version or configuration. Entries are never written in place (a new
        // file is renamed over), so the mapped pages stay what was checked. The
        // folder (checked at the session's start) and this file (checked through
        // this descriptor) are the user's own and no one else can write them:
        // trusted like our binary.
        let artifact = match kind {
            Kind::Module => Artifact::Module(
                unsafe { wasmtime::Module::deserialize_open_file(engine, file) }.ok()?,
            ),
            Kind::Component => Artifact::Component(unsafe { deserialize_component(engine, file) }?),
        };
        Some(artifact)
    }

    /// Keeps `artifact` under `key`. Best effort: a cache that cannot be written
    /// only costs a later compile.
    pub(crate) fn save(&mut self, key: Key, artifact: &Artifact) {
        let Ok(code) = artifact.serialize() else {
            return;
        };
        // Made now if it was not there at the start: by us, or by someone else
        // meanwhile (then not written to).
        if create_private_dir(&self.dir).is_err() || distrust(&self.dir).is_some() {
            return;
        }
        let file = self.file(key);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let temp = self.dir.join(format!(
            ".{:032x}.{}.{nanos}.tmp",
            key.0,
            std::process::id()
        ));
        let written = write_entry(&temp, key, &code).and_then(|()| fs::rename(&temp, &file));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
            return;
        }
        let size = (code.len() + TRAILER) as u64;
        match &mut self.held {
            Some(held) if held.saturating_add(size) <= self.budget => *held += size,
            _ => self.evict(),
        }
    }

    /// What an eviction brings the folder down to: a tenth of the budget
    /// below it, so that a full cache is listed once per tenth of its budget
    /// written, not on every save (a full 1 GiB folder is tens of thousands
    /// of files to stat).
    fn low_water(&self) -> u64 {
        self.budget - self.budget / 10
    }

    /// Removes the least recently used entries until the folder is down to
    /// [`Self::low_water`], and temporary files left by sessions that died
    /// while writing.
    fn evict(&mut self) {
        let Ok(listing) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        let mut entries = Vec::new();
        for entry in listing.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            let modified = meta.modified().unwrap_or(now);
            let is = |ext| path.extension().is_some_and(|found| found == ext);
            if is("tmp") && now.duration_since(modified).unwrap_or_default() > STALE {
                let _ = fs::remove_file(&path);
            } else if is("cwasm") && meta.is_file() {
                entries.push((modified, meta.len(), path));
            }
        }
        entries.sort();
        let mut held: u64 = entries.iter().map(|(_, size, _)| size).sum();
        // The newest entry stays even when it alone passes the budget: it is
        // the one in use.
        let low_water = if held > self.budget {
            self.low_water()
        } else {
            self.budget
        };
        for (_, size, path) in entries.iter().rev().skip(1).rev() {
            if held <= low_water {
                break;
            }
            if fs::remove_file(path).is_ok() {
                held -= size;
            }
        }
        self.held = Some(held);
    }
}

/// The component compiled into `file`, mapped from that very file.
///
/// wasmtime (48 to 50) takes an open file for modules (`deserialize_open_file`) but
/// only a path for components: the path given is the descriptor's own
/// (`/proc/self/fd/N`), which the kernel resolves to the file already open,
/// whatever is at the entry's name by now. Without `/proc` (or `/dev/fd`), the
/// bytes are read through the descriptor and copied.
///
/// # Safety
///
/// As [`Component::deserialize_file`]: `file` holds code this engine
/// compiled, and nobody changes it while the component lives.
unsafe fn deserialize_component(engine: &Engine, mut file: File) -> Option<Component> {
    // SAFETY: as this function's.
    if let Some(own) = private::path_of_open(&file)
        && let Ok(component) = unsafe { Component::deserialize_file(engine, own) }
    {
        return Some(component);
    }
    let mut code = Vec::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_end(&mut code).ok()?;
    code.truncate(code.len().checked_sub(TRAILER)?);
    // SAFETY: as this function's.
    unsafe { Component::deserialize(engine, code) }.ok()
}

/// True when `file` is an entry for `key` whose code has the length and
/// checksum its trailer gives. Reads it through a small buffer: the pages stay
/// the page cache's, ready for wasmtime to map.
fn is_whole(file: &mut File, key: Key) -> bool {
    let Ok(meta) = file.metadata() else {
        return false;
    };
    let Some(code_len) = meta.len().checked_sub(TRAILER as u64) else {
        return false;
    };
    let mut trailer = [0u8; TRAILER];
    if file.seek(SeekFrom::Start(code_len)).is_err() || file.read_exact(&mut trailer).is_err() {
        return false;
    }
    if trailer != make_trailer(key, code_len, read_checksum(&trailer)) {
        return false;
    }
    if file.seek(SeekFrom::Start(0)).is_err() {
        return false;
    }
    let mut hasher = Xxh3::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut left = code_len;
    while left > 0 {
        let want = usize::try_from(left.min(buffer.len() as u64)).unwrap_or(buffer.len());
        match file.read(&mut buffer[..want]) {
            Ok(0) | Err(_) => return false,
            Ok(read) => {
                hasher.update(&buffer[..read]);
                left -= read as u64;
            }
        }
    }
    hasher.digest128() == read_checksum(&trailer)
}

/// The checksum a trailer gives.
fn read_checksum(trailer: &[u8; TRAILER]) -> u128 {
    let mut checksum = [0u8; 16];
    checksum.copy_from_slice(&trailer[24..40]);
    u128::from_le_bytes(checksum)
}

/// Key, code length, code checksum, magic.
fn make_trailer(key: Key, code_len: u64, checksum: u128) -> [u8; TRAILER] {
    let mut trailer = [0u8; TRAILER];
    trailer[..16].copy_from_slice(&key.0.to_le_bytes());
    trailer[16..24].copy_from_slice(&code_len.to_le_bytes());
    trailer[24..40].copy_from_slice(&checksum.to_le_bytes());
    trailer[40..].copy_from_slice(MAGIC);
    trailer
}

fn write_entry(path: &Path, key: Key, code: &[u8]) -> std::io::Result<()> {
    let trailer = make_trailer(key, code.len() as u64, xxh3_128(code));
    let mut file = File::create_new(path)?;
    file.write_all(code)?;
    file.write_all(&trailer)
}

// The disk cache is used on Unix only (`cache/disk/private.rs`).
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn module(engine: &Engine, text: &str) -> (Vec<u8>, Artifact) {
        let wasm = wat::parse_str(text).expect("wat");
        let module = wasmtime::Module::new(engine, &wasm).expect("compiles");
        (wasm, Artifact::Module(module))
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = fs::read_dir(dir)
            .expect("cache dir")
            .map(|entry| entry.expect("entry").path())
            .collect();
        found.sort();
        found
    }

    #[test]
    fn an_entry_comes_back_only_whole_and_for_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::default();
        let mut cache = DiskCache::new(dir.path().join("c"), u64::MAX, &engine);
        let (wasm, artifact) = module(&engine, "(module (func (export \"f\")))");
        let key = cache.key(&wasm);
        assert!(cache.load(&engine, Kind::Module, key).is_none());
        cache.save(key, &artifact);
        let loaded = cache.load(&engine, Kind::Module, key);
        assert!(matches!(loaded, Some(Artifact::Module(m)) if m.get_export("f").is_some()));

        let file = cache.file(key);
        let whole = fs::read(&file).expect("entry");
        // Truncated, one byte flipped, or another entry under this name: refused.
        fs::write(&file, &whole[..whole.len() - 1]).expect("truncate");
        assert!(cache.load(&engine, Kind::Module, key).is_none());
        let mut flipped = whole.clone();
        flipped[whole.len() / 2] ^= 1;
        fs::write(&file, &flipped).expect("flip");
        assert!(cache.load(&engine, Kind::Module, key).is_none());
        let (other_wasm, other) = module(&engine, "(module (func (export \"g\")))");
        let other_key = cache.key(&other_wasm);
        cache.save(other_key, &other);
        fs::copy(cache.file(other_key), &file).expect("copy");
        assert!(cache.load(&engine, Kind::Module, key).is_none());

        // Saved again, it is whole again.
        cache.save(key, &artifact);
        assert!(cache.load(&engine, Kind::Module, key).is_some());
    }

    #[test]
    fn another_engine_setting_is_another_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = Engine::default();
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        let fuel = Engine::new(&config).expect("engine");
        let wasm = wat::parse_str("(module)").expect("wat");
        let a = DiskCache::new(dir.path().to_path_buf(), u64::MAX, &plain);
        let b = DiskCache::new(dir.path().to_path_buf(), u64::MAX, &fuel);
        assert_ne!(a.key(&wasm), b.key(&wasm));
    }

    #[test]
    fn code_compiled_for_deterministic_runs_has_keys_of_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wasm = wat::parse_str("(module)").expect("wat");
        let key = |deterministic| {
            let options = crate::plan::EngineOptions {
                deterministic,
                ..Default::default()
            };
            let engine = crate::engine::new_engine(&options, false).expect("engine");
            DiskCache::new(dir.path().to_path_buf(), u64::MAX, &engine).key(&wasm)
        };
        // NaN canonicalisation is in the code: without it, a deterministic
        // session must not load it.
        assert_ne!(key(true), key(false));
        assert_eq!(key(true), key(true));
    }

    #[test]
    fn a_full_cache_evicts_the_least_recently_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::default();
        let texts = ["(module $a)", "(module $b)", "(module $c)"];
        let compiled: Vec<_> = texts.iter().map(|text| module(&engine, text)).collect();
        let probe = DiskCache::new(dir.path().join("probe"), u64::MAX, &engine);
        let key = |index: usize| probe.key(&compiled[index].0);
        let mut sizing = DiskCache::new(dir.path().join("size"), u64::MAX, &engine);
        sizing.save(key(0), &compiled[0].1);
        let size = fs::metadata(sizing.file(key(0))).expect("entry").len();

        // Room for two entries (and a little more).
        let mut cache = DiskCache::new(dir.path().join("c"), 2 * size + size / 2, &engine);
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        cache.save(key(0), &compiled[0].1);
        cache.save(key(1), &compiled[1].1);
        for index in [0, 1] {
            let file = File::options().write(true).open(cache.file(key(index)));
            file.expect("entry")
                .set_modified(an_hour_ago + Duration::from_secs(index as u64))
                .expect("age it");
        }
        // Using `a` makes `b` the least recently used: `c` replaces `b`.
        assert!(cache.load(&engine, Kind::Module, key(0)).is_some());
        cache.save(key(2), &compiled[2].1);
        let mut kept = vec![cache.file(key(0)), cache.file(key(2))];
        kept.sort();
        assert_eq!(entries(&cache.dir), kept);

        // A session that does not know what others wrote still keeps to the budget.
        let mut other = DiskCache::new(cache.dir.clone(), 2 * size + size / 2, &engine);
        other.save(key(1), &compiled[1].1);
        assert_eq!(entries(&cache.dir).len(), 2);
        assert!(other.load(&engine, Kind::Module, key(1)).is_some());
    }

    #[test]
    fn a_full_cache_makes_room_for_a_tenth_of_its_budget_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::default();
        let compiled: Vec<_> = (10..40)
            .map(|index| module(&engine, &format!("(module $m{index})")))
            .collect();
        let mut sizing = DiskCache::new(dir.path().join("size"), u64::MAX, &engine);
        sizing.save(sizing.key(&compiled[0].0), &compiled[0].1);
        let size = fs::metadata(sizing.file(sizing.key(&compiled[0].0)))
            .expect("entry")
            .len();

        // Room for twenty entries: the twenty-first brings the folder down to
        // 90% of that, eighteen entries.
        let mut cache = DiskCache::new(dir.path().join("c"), 20 * size, &engine);
        for (wasm, artifact) in &compiled[..21] {
            cache.save(cache.key(wasm), artifact);
        }
        assert_eq!(entries(&cache.dir).len(), 18);
        // The next two saves fit without listing the folder (which would
        // remove a temporary file this old).
        let stale = cache.dir.join(".left-by-a-dead-session.tmp");
        fs::write(&stale, b"").expect("stale temp");
        File::options()
            .write(true)
            .open(&stale)
            .and_then(|file| file.set_modified(SystemTime::now() - 2 * STALE))
            .expect("age it");
        for (wasm, artifact) in &compiled[21..23] {
            cache.save(cache.key(wasm), artifact);
        }
        assert!(stale.exists());
        assert_eq!(entries(&cache.dir).len(), 21);
        // The one after that does not: the folder is listed and evicted again.
        cache.save(cache.key(&compiled[23].0), &compiled[23].1);
        assert!(!stale.exists());
        assert_eq!(entries(&cache.dir).len(), 18);
    }

    #[test]
    fn two_sessions_writing_at_once_leave_one_whole_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::default();
        let (wasm, artifact) = module(&engine, "(module (func (export \"f\")))");
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (dir, engine, artifact) =
                    (dir.path().join("c"), engine.clone(), artifact.clone());
                let wasm = wasm.clone();
                std::thread::spawn(move || {
                    let mut cache = DiskCache::new(dir, u64::MAX, &engine);
                    for _ in 0..20 {
                        let key = cache.key(&wasm);
                        cache.save(key, &artifact);
                        assert!(cache.load(&engine, Kind::Module, key).is_some());
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("writer");
        }
        let cache = dir.path().join("c");
        assert_eq!(entries(&cache).len(), 1, "{:?}", entries(&cache));
    }

    #[test]
    fn only_a_folder_the_user_alone_can_write_is_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("c");
        assert_eq!(distrust(&cache), None, "made private when first written");
        create_private_dir(&cache).expect("mkdir");
        assert_eq!(distrust(&cache), None);
        for (mode, why) in [
            (0o770, "by its group"),
            (0o707, "by others"),
            (0o1777, "by others"),
        ] {
            fs::set_permissions(&cache, fs::Permissions::from_mode(mode)).expect("chmod");
            let said = distrust(&cache).expect("distrusted");
            assert!(
                said.contains(why) && said.contains(&*cache.to_string_lossy()),
                "{said}"
            );
        }
        fs::write(dir.path().join("f"), b"").expect("file");
        assert!(distrust(&dir.path().join("f")).is_some());
    }

    #[test]
    fn an_entry_others_can_write_or_a_symlink_is_not_loaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::default();
        let mut cache = DiskCache::new(dir.path().join("c"), u64::MAX, &engine);
        let (wasm, artifact) = module(&engine, "(module)");
        let key = cache.key(&wasm);
        cache.save(key, &artifact);
        let file = cache.file(key);
        for mode in [0o620, 0o602] {
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).expect("chmod");
            assert!(cache.load(&engine, Kind::Module, key).is_none(), "{mode:o}");
        }
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(cache.load(&engine, Kind::Module, key).is_some());
        let elsewhere = dir.path().join("entry");
        fs::rename(&file, &elsewhere).expect("move");
        std::os::unix::fs::symlink(&elsewhere, &file).expect("symlink");
        assert!(cache.load(&engine, Kind::Module, key).is_none());
    }

    #[test]
    fn a_fifo_in_the_cache_is_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::default();
        let cache = DiskCache::new(dir.path().to_path_buf(), u64::MAX, &engine);
        let key = cache.key(b"\0asm\x01\0\0\0");
        let fifo = std::ffi::CString::new(cache.file(key).into_os_string().into_encoded_bytes())
            .expect("path");
        // SAFETY: a valid C string; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(cache.load(&engine, Kind::Module, key).is_none());
    }
}
