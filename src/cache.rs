//! Compiled modules kept across runs, keyed by file and content hash.
//!
//! A save recompiles only the files whose bytes changed. One entry per file: a
//! new version replaces the old one, so memory stays flat over thousands of saves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use wasmtime::{Engine, Module};

use crate::source::{self, ContentHash};

/// The compile cache of a session.
#[derive(Default)]
pub struct ModuleCache {
    modules: HashMap<PathBuf, (ContentHash, Module)>,
}

/// A module ready to instantiate, and whether the cache already had it.
pub struct Loaded {
    /// The compiled module.
    pub module: Module,
    /// The hash of the bytes it was compiled from.
    pub hash: ContentHash,
    /// True when nothing was compiled.
    pub cache_hit: bool,
}

impl ModuleCache {
    /// Reads `path` and returns its compiled module, compiling only if its bytes
    /// changed since the last call.
    pub fn load(&mut self, engine: &Engine, path: &Path) -> Result<Loaded> {
        let bytes = source::read(path)?;
        let hash = source::content_hash(&bytes);
        if let Some((cached_hash, module)) = self.modules.get(path)
            && *cached_hash == hash
        {
            return Ok(Loaded {
                module: module.clone(),
                hash,
                cache_hit: true,
            });
        }
        let wasm = source::to_wasm(path, &bytes)?;
        let module = Module::new(engine, &wasm)
            .map_err(anyhow::Error::from)
            .map_err(|err| err.context(format!("{}: invalid module", path.display())))?;
        self.modules
            .insert(path.to_path_buf(), (hash, module.clone()));
        Ok(Loaded {
            module,
            hash,
            cache_hit: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_bytes_hit_and_new_bytes_replace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.wat");
        let engine = Engine::default();
        let mut cache = ModuleCache::default();

        std::fs::write(&path, "(module)").expect("write");
        assert!(!cache.load(&engine, &path).expect("first").cache_hit);
        assert!(cache.load(&engine, &path).expect("second").cache_hit);

        std::fs::write(&path, "(module (func))").expect("write");
        assert!(!cache.load(&engine, &path).expect("changed").cache_hit);
        assert_eq!(cache.modules.len(), 1);
    }
}
