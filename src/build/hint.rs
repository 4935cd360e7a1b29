//! What to do about a build the shell could not run: exit 127 (a command not
//! found) or 126 (found, but not runnable). The shell's own message (`sh: 1:
//! go: not found`) is in the build's output; this names what the command line
//! itself shows: its first word missing from PATH, a script that does not
//! exist or cannot be run, or else a command the build's script runs.

use std::path::Path;

/// Words the shell runs itself (builtins, keywords): a command not found is
/// later on the line.
const SHELL_WORDS: &[&str] = &[
    ".", ":", "!", "{", "[", "alias", "bg", "break", "case", "cd", "command", "continue", "echo",
    "eval", "exec", "exit", "export", "false", "fg", "for", "getopts", "hash", "if", "jobs",
    "kill", "printf", "pwd", "read", "readonly", "return", "set", "shift", "test", "time", "times",
    "trap", "true", "type", "ulimit", "umask", "unset", "until", "wait", "while",
];

/// The hint for a build `command`, run in `dir`, that exited with `code`;
/// none unless the shell could not run a command (127, 126).
pub(crate) fn hint(command: &str, dir: &Path, code: Option<i32>) -> Option<String> {
    let code = code.filter(|code| *code == 126 || *code == 127)?;
    let inside = |what: &str| {
        format!(
            "a command {what} was not found (exit 127, named just above): is its \
             compiler installed and on PATH?"
        )
    };
    let Some(word) = first_word(command) else {
        return Some(match code {
            127 => inside("the build runs"),
            _ => "a command the build runs could not be run (exit 126: not executable, or \
                  a folder)"
                .to_owned(),
        });
    };
    if word.contains('/') {
        let path = dir.join(word);
        return Some(match (code, path.metadata()) {
            (_, Err(_)) => format!("`{word}` does not exist (exit {code})"),
            (_, Ok(meta)) if meta.is_dir() => format!("`{word}` is a folder (exit {code})"),
            (126, Ok(_)) => format!("`{word}` is not executable: `chmod +x {word}`"),
            _ => inside(&format!("in `{word}`")),
        });
    }
    if code == 127 && !SHELL_WORDS.contains(&word) && !on_path(word) {
        return Some(format!(
            "`{word}` is not on PATH: install it, or add its folder to PATH"
        ));
    }
    Some(match code {
        127 => inside("the build runs"),
        _ => format!("`{word}` or a command it runs could not be run (exit 126)"),
    })
}

/// The command's first word, after `NAME=value` assignments and an `exec`;
/// none when it is shell syntax this does not read (quotes, expansions).
fn first_word(command: &str) -> Option<&str> {
    let assignment = |word: &str| {
        word.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    let word = command
        .split_whitespace()
        .skip_while(|word| assignment(word))
        .find(|word| *word != "exec")?;
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._+-@%,:".contains(c);
    word.chars().all(plain).then_some(word)
}

/// True when `program` is an executable file in a folder of PATH.
fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let file = dir.join(program);
        match file.metadata() {
            #[cfg(unix)]
            Ok(meta) => {
                use std::os::unix::fs::PermissionsExt;
                meta.is_file() && meta.permissions().mode() & 0o111 != 0
            }
            #[cfg(not(unix))]
            Ok(meta) => meta.is_file(),
            Err(_) => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_word_is_read_past_assignments_and_exec() {
        assert_eq!(first_word("go build -o main.wasm ."), Some("go"));
        assert_eq!(
            first_word("GOOS=wasip1 GOARCH=wasm exec go build"),
            Some("go")
        );
        assert_eq!(first_word("  ./build"), Some("./build"));
        assert_eq!(first_word("$CC main.c"), None);
        assert_eq!(first_word("\"my tool\" x"), None);
        assert_eq!(first_word(""), None);
    }

    #[test]
    fn each_way_a_command_is_not_found_has_its_words() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("script"), "#!/bin/sh\ngo build\n").expect("write");
        let hint = |command, code| hint(command, dir.path(), Some(code)).unwrap_or_default();
        assert_eq!(
            hint("nosuchcompiler-xyz main.c", 127),
            "`nosuchcompiler-xyz` is not on PATH: install it, or add its folder to PATH"
        );
        assert_eq!(
            hint("./nothere", 127),
            "`./nothere` does not exist (exit 127)"
        );
        assert!(hint("./script", 127).starts_with("a command in `./script` was not found"));
        assert_eq!(
            hint("./script", 126),
            "`./script` is not executable: `chmod +x ./script`"
        );
        assert!(hint("sh -c 'go build'", 127).starts_with("a command the build runs"));
        assert!(hint("cd src && go build", 127).starts_with("a command the build runs"));
        assert_eq!(super::hint("./nothere", dir.path(), Some(1)), None);
        assert_eq!(super::hint("./nothere", dir.path(), None), None);
    }
}
