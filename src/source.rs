//! Module source on disk: read a file, fingerprint it, turn `.wat` text into wasm bytes.
//!
//! Reading and parsing are separate steps so the compile cache can skip the parse
//! when a file's bytes did not change.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

/// The fingerprint of a file's bytes: the key of the compile cache and of the
/// watcher's "did this save change anything" check.
pub(crate) type ContentHash = u64;

/// A module file a run resolved, or tried to: what the watcher must watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModuleFile {
    /// The file (absolute).
    pub path: PathBuf,
    /// The hash of the bytes the run used; `None` if it did not exist.
    pub hash: Option<ContentHash>,
}

/// What a wasm binary holds: the run takes a different path for each, decided
/// from the bytes on every load (one save can turn `main.wasm` into a component).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A core module (WASI preview 1, or none).
    Module,
    /// A component (the component model, WASI 0.2).
    Component,
}

impl Kind {
    /// The kind of a wasm binary, from its header.
    pub(crate) fn of(wasm: &[u8]) -> Kind {
        if wasmparser::Parser::is_component(wasm) {
            Kind::Component
        } else {
            Kind::Module
        }
    }
}

/// Hashes bytes with xxh3: fast (GB/s), and collisions are irrelevant at our scale.
pub(crate) fn content_hash(bytes: &[u8]) -> ContentHash {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The hash of a file's current bytes, or `None` when it is not a regular file
/// that can be read (missing, a folder, a FIFO). Read in bounded chunks: a
/// 600 MB file dropped into a watched folder costs no more memory than a small one.
pub(crate) fn file_hash(path: &Path) -> Option<ContentHash> {
    hash_file(open_regular(path).ok()?)
}

/// The hash of an open file's bytes, read in bounded chunks.
pub(crate) fn hash_file(mut file: File) -> Option<ContentHash> {
    use std::io::Read;
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Some(hasher.digest()),
            Ok(read) => hasher.update(&chunk[..read]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Opens `path` for reading if it is a regular file. A FIFO or a device is
/// opened without blocking and refused, so a strange file never stalls a run
/// or the watcher.
pub(crate) fn open_regular(path: &Path) -> std::io::Result<File> {
    regular(reading().open(path)?)
}

/// Options to open a file for reading without waiting on it, whatever it is.
/// On Unix a FIFO with no writer would block the open (`O_NONBLOCK`), and a
/// terminal would become our controlling one (`O_NOCTTY`). Windows has no
/// FIFO in a folder (its pipes live under `\\.\pipe\`) and no controlling
/// terminal: a plain open.
pub(crate) fn reading() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, NO_WAIT);
    options
}

/// [`reading`] for a file opened beneath a folder handle.
pub(crate) fn reading_beneath() -> cap_std::fs::OpenOptions {
    let mut options = cap_std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    cap_std::fs::OpenOptionsExt::custom_flags(&mut options, NO_WAIT);
    options
}

/// The open flags of [`reading`].
#[cfg(unix)]
const NO_WAIT: i32 = libc::O_NONBLOCK | libc::O_NOCTTY;

/// `file` if it is a regular file; the error says what it is otherwise.
pub(crate) fn regular(file: File) -> std::io::Result<File> {
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    Err(std::io::Error::other(format!(
        "it is {}, not a regular file",
        what_kind(kind)
    )))
}

/// "a directory", "a FIFO", ...: what a file that is not a regular file is.
fn what_kind(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if let Some(special) = special_kind(kind) {
        special
    } else if kind.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// "a FIFO", "a socket", "a device": Unix's special files.
#[cfg(unix)]
fn special_kind(kind: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else {
        None
    }
}

/// Windows has none in a folder: a file there is a file, a folder or a symlink.
#[cfg(not(unix))]
fn special_kind(_: std::fs::FileType) -> Option<&'static str> {
    None
}

/// What `stat` says of a file that changes with its bytes: length, inode,
/// modification and change times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub len: u64,
    pub inode: u64,
    pub modified: SystemTime,
    pub changed: SystemTime,
}

impl Fingerprint {
    /// The fingerprint `stat` gave (of an open file, say).
    #[cfg(unix)]
    pub(crate) fn of_metadata(meta: &std::fs::Metadata) -> Option<Fingerprint> {
        use std::os::unix::fs::MetadataExt;
        use std::time::{Duration, UNIX_EPOCH};
        let changed = UNIX_EPOCH
            + Duration::new(
                u64::try_from(meta.ctime()).ok()?,
                u32::try_from(meta.ctime_nsec()).ok()?,
            );
        Some(Fingerprint {
            len: meta.len(),
            inode: meta.ino(),
            modified: meta.modified().ok()?,
            changed,
        })
    }

    /// Elsewhere there is none: every file is read and hashed.
    #[cfg(not(unix))]
    pub(crate) fn of_metadata(_: &std::fs::Metadata) -> Option<Fingerprint> {
        None
    }
}

/// Reads an opened module file (`path` names it in the error).
pub(crate) fn read(mut file: &File, path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}

/// The longest `.wat` line for which traps get line numbers.
const MAX_LINE_FOR_DWARF: usize = 4096;

/// The deepest nesting of blocks, loops and ifs taken in a function. Compiling
/// costs memory in proportion (a million levels: 5 s and 890 MB), and no
/// compiler's output comes near it (a 10,000-case `switch` nests 10,000).
pub(crate) const MAX_NESTING: usize = 100_000;

/// Refuses code nested deeper than [`MAX_NESTING`], in any module of `wasm`
/// (a component's too), before it reaches the compiler.
pub(crate) fn check_nesting(wasm: &[u8]) -> Result<()> {
    use wasmparser::{Operator, Payload};
    let mut function = 0;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        // Malformed input is the compiler's to report, with its own words.
        let Ok(Payload::CodeSectionEntry(body)) = payload else {
            continue;
        };
        let Ok(mut operators) = body.get_operators_reader() else {
            continue;
        };
        let mut depth = 0usize;
        while !operators.eof() {
            let Ok(operator) = operators.read() else {
                break;
            };
            match operator {
                Operator::Block { .. }
                | Operator::Loop { .. }
                | Operator::If { .. }
                | Operator::Try { .. }
                | Operator::TryTable { .. } => depth += 1,
                Operator::End => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth > MAX_NESTING {
                bail!(
                    "function {function} nests blocks more than {MAX_NESTING} deep: \
                     refused before compiling (a generator gone wrong?)"
                );
            }
        }
        function += 1;
    }
    Ok(())
}

/// The line where `.wat` text first nests parentheses deeper than
/// [`MAX_NESTING`] (outside strings and comments), if it does: refused before
/// the parser spends ~460 bytes per level on it.
fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut line, mut at) = (0usize, 1, 0);
    let mut comments = 0usize;
    while let Some(&byte) = bytes.get(at) {
        let next = bytes.get(at + 1).copied();
        match (byte, next) {
            (b'\n', _) => line += 1,
            (b'(', Some(b';')) => {
                comments += 1;
                at += 1;
            }
            (b';', Some(b')')) if comments > 0 => {
                comments -= 1;
                at += 1;
            }
            _ if comments > 0 => {}
            (b';', Some(b';')) => {
                let rest = bytes[at..].iter().position(|b| *b == b'\n');
                at = rest.map_or(bytes.len(), |newline| at + newline);
                continue;
            }
            (b'"', _) => {
                at += 1;
                while let Some(&inside) = bytes.get(at) {
                    match inside {
                        b'\\' => at += 1,
                        b'"' => break,
                        b'\n' => line += 1,
                        _ => {}
                    }
                    at += 1;
                }
            }
            (b'(', _) => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(line);
                }
            }
            (b')', _) => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    None
}

/// Turns a file's bytes into a wasm binary: `.wat` text is parsed (errors carry
/// `file:line:col` and the offending line) and gets DWARF line tables, so a trap's
/// backtrace names `main.wat:12:5` (about 0.05 ms per compile); a binary is
/// passed through.
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
    if let Some(line) = too_deep(text) {
        bail!(
            "{}:{line}: parentheses nest more than {MAX_NESTING} deep: refused before \
             parsing (a generator gone wrong?)",
            path.display()
        );
    }
    let located = |err| WatError::new(path, text, err);
    let mut buffer = wast::parser::ParseBuffer::new(text).map_err(located)?;
    // Line tables for traps: a backtrace then says `main.wat:12:5`.
    buffer.track_instr_spans(true);
    let mut wat: wast::Wat = wast::parser::parse(&buffer).map_err(located)?;
    let mut options = wast::core::EncodeOptions::new();
    // wast finds each instruction's line by searching the text for the next
    // newline: quadratic on a generated one-line file (1M instructions on one
    // line took 214 s). A line table for such a file says little anyway.
    if text.lines().all(|line| line.len() <= MAX_LINE_FOR_DWARF) {
        options.dwarf(path, text, wast::core::GenerateDwarf::Lines);
    }
    Ok(options.encode_wat(&mut wat).map_err(located)?)
}

/// Finds where in `text` a validation error of its encoding `wasm` lies: the
/// validator reports a byte offset; the instruction at that offset is found in
/// its function body, and the same instruction's span in the text. Only called
/// on the error path: the happy path never tracks spans.
pub(crate) fn locate_invalid(path: &Path, text: &str, wasm: &[u8]) -> Option<WatError> {
    let error = wasmparser::Validator::new().validate_all(wasm).err()?;
    let (function, instruction) = instruction_at(wasm, error.offset())?;

    let mut buffer = wast::parser::ParseBuffer::new(text).ok()?;
    buffer.track_instr_spans(true);
    let wat: wast::Wat = wast::parser::parse(&buffer).ok()?;
    let wast::Wat::Module(module) = wat else {
        return None;
    };
    let wast::core::ModuleKind::Text(fields) = module.kind else {
        return None;
    };
    let defined = fields.iter().filter_map(|field| match field {
        wast::core::ModuleField::Func(func) => match &func.kind {
            wast::core::FuncKind::Inline { expression, .. } => Some((func.span, expression)),
            wast::core::FuncKind::Import(..) => None,
        },
        _ => None,
    });
    let (func_span, expression) = defined.into_iter().nth(function)?;
    let span = expression
        .instr_spans
        .as_ref()
        .and_then(|spans| spans.get(instruction).copied())
        .unwrap_or(func_span);
    let message = error.message().to_owned();
    let located = WatError::new(path, text, wast::Error::new(span, message));
    Some(WatError {
        validation: true,
        ..located
    })
}

/// (defined function index, instruction index in its body) of byte `offset`.
fn instruction_at(wasm: &[u8], offset: u64) -> Option<(usize, usize)> {
    let mut function = 0;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let wasmparser::Payload::CodeSectionEntry(body) = payload.ok()? else {
            continue;
        };
        if !body.range().contains(&offset) {
            function += 1;
            continue;
        }
        let mut reader = body.get_operators_reader().ok()?;
        let mut instruction = None;
        while !reader.eof() {
            let (_, at) = reader.read_with_offset().ok()?;
            if at > offset {
                break;
            }
            instruction = Some(instruction.map_or(0, |index| index + 1));
        }
        return Some((function, instruction.unwrap_or(0)));
    }
    None
}

/// A `.wat` error with its place: `file:line:col`, the line, and a caret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WatError {
    /// The file.
    pub path: std::path::PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong, in one line.
    pub message: String,
    /// True for a validation error (well-formed text, invalid module), false
    /// for a syntax error.
    pub validation: bool,
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
            validation: false,
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
    #[test]
    fn nesting_past_the_bound_is_refused_before_compiling() {
        let deep = |n: usize| format!("(module (func {}{}))", "(block ".repeat(n), ")".repeat(n));
        assert_eq!(too_deep(&deep(MAX_NESTING - 2)), None);
        assert_eq!(too_deep(&deep(MAX_NESTING)), Some(1));
        // Parentheses in strings and comments do not count.
        let quoted = format!(
            "(module\n;; {}\n(; ( ;)\n(data \"{}\\\"\"))",
            "(".repeat(MAX_NESTING + 1),
            "(".repeat(MAX_NESTING + 1)
        );
        assert_eq!(too_deep(&quoted), None);
        assert_eq!(
            too_deep(&format!("\n\n{}", "(".repeat(MAX_NESTING + 1))),
            Some(3)
        );

        let flat = |n: usize| {
            let text = format!("(module (func {}{}))", "block ".repeat(n), "end ".repeat(n));
            wat::parse_str(text).expect("valid")
        };
        assert!(check_nesting(&flat(1000)).is_ok());
        let error = check_nesting(&flat(MAX_NESTING + 1)).expect_err("too deep");
        assert!(
            error.to_string().contains("function 0 nests blocks"),
            "{error}"
        );
    }

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
    fn validation_errors_point_at_the_instruction() {
        let text = "(module\n  (func $f (result i32)\n    (i32.add\n      (i32.const 1)\n      (i64.const 2))))\n";
        let path = Path::new("main.wat");
        let wasm = to_wasm(path, text.as_bytes()).expect("parses: the error is a type error");
        let located = locate_invalid(path, text, &wasm).expect("located");
        // The i32.add that finds an i64 on the stack.
        assert_eq!((located.line, located.col), (3, 6), "{located}");
        assert!(located.message.contains("type mismatch"), "{located}");
        assert!(located.to_string().contains("main.wat:3:6"), "{located}");

        let fine = to_wasm(path, b"(module (func))").expect("valid");
        assert!(locate_invalid(path, "(module (func))", &fine).is_none());
    }

    #[test]
    fn binary_passes_through_and_garbage_is_named() {
        let wasm = b"\0asm\x01\0\0\0";
        assert_eq!(to_wasm(Path::new("m.wasm"), wasm).expect("binary"), wasm);
        let err = to_wasm(Path::new("m.wasm"), b"\x7fELF").expect_err("garbage");
        assert!(format!("{err}").contains("not a WebAssembly binary"));
    }

    #[test]
    fn the_kind_comes_from_the_bytes() {
        let module = to_wasm(Path::new("m.wat"), b"(module)").expect("module");
        assert_eq!(Kind::of(&module), Kind::Module);
        let component = to_wasm(Path::new("c.wat"), b"(component)").expect("component");
        assert_eq!(Kind::of(&component), Kind::Component);
    }

    #[test]
    fn hash_follows_content() {
        assert_eq!(content_hash(b"a"), content_hash(b"a"));
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
    }
}
