//! Module source on disk: read a file, fingerprint it, turn `.wat` text into wasm bytes.
//!
//! Reading and parsing are separate steps so the compile cache can skip the parse
//! when a file's bytes did not change.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// The fingerprint of a file's bytes: the key of the compile cache and of the
/// watcher's "did this save change anything" check.
pub type ContentHash = u64;

/// Hashes bytes with xxh3: fast (GB/s), and collisions are irrelevant at our scale.
pub fn content_hash(bytes: &[u8]) -> ContentHash {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The hash of a file's current bytes, or `None` when it cannot be read (missing).
pub fn file_hash(path: &Path) -> Option<ContentHash> {
    std::fs::read(path).ok().map(|bytes| content_hash(&bytes))
}

/// Reads a module file, with an error that names it.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!("{}: file not found", path.display()),
        _ => anyhow::Error::new(err).context(format!("cannot read {}", path.display())),
    })
}

/// Turns a file's bytes into a wasm binary: `.wat` text is parsed (errors carry
/// `file:line:col` and the offending line), a binary is passed through.
pub fn to_wasm(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    const MAGIC: &[u8] = b"\0asm";
    if bytes.starts_with(MAGIC) {
        return Ok(bytes.to_vec());
    }
    let is_binary_name = path.extension().is_some_and(|ext| ext == "wasm");
    if is_binary_name {
        if bytes.is_empty() {
            bail!("{}: the file is empty", path.display());
        }
        bail!(
            "{}: not a WebAssembly binary (it does not start with the `\\0asm` magic bytes)",
            path.display()
        );
    }
    let text = std::str::from_utf8(bytes)
        .with_context(|| format!("{}: a .wat file must be UTF-8 text", path.display()))?;
    let located = |err| WatError::new(path, text, err);
    let buffer = wast::parser::ParseBuffer::new(text).map_err(located)?;
    let mut wat: wast::Wat = wast::parser::parse(&buffer).map_err(located)?;
    Ok(wat.encode().map_err(located)?)
}

/// A `.wat` error with its place: `file:line:col`, the line, and a caret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatError {
    /// The file.
    pub path: std::path::PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong, in one line.
    pub message: String,
    /// The whole report, with the source line and a caret.
    rendered: String,
}

impl WatError {
    fn new(path: &Path, text: &str, mut err: wast::Error) -> Self {
        let (line, col) = err.span().linecol_in(text);
        err.set_path(path);
        err.set_text(text);
        Self {
            path: path.to_path_buf(),
            line: line + 1,
            col: col + 1,
            message: err.message(),
            rendered: err.to_string(),
        }
    }
}

impl std::fmt::Display for WatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.rendered)
    }
}

impl std::error::Error for WatError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wat_errors_say_where() {
        let err = to_wasm(Path::new("dir/main.wat"), b"(module\n  (func (oops)))")
            .expect_err("syntax error");
        let message = format!("{err:#}");
        assert!(message.contains("dir/main.wat:2:"), "{message}");
        let located = err.downcast_ref::<WatError>().expect("structured");
        assert_eq!((located.line, located.col), (2, 10));
        assert!(message.contains("(func (oops)))\n"), "the line: {message}");
        assert!(message.contains('^'), "a caret: {message}");
    }

    #[test]
    fn binary_passes_through_and_garbage_is_named() {
        let wasm = b"\0asm\x01\0\0\0";
        assert_eq!(to_wasm(Path::new("m.wasm"), wasm).expect("binary"), wasm);
        let err = to_wasm(Path::new("m.wasm"), b"\x7fELF").expect_err("garbage");
        assert!(format!("{err}").contains("not a WebAssembly binary"));
    }

    #[test]
    fn hash_follows_content() {
        assert_eq!(content_hash(b"a"), content_hash(b"a"));
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
    }
}
