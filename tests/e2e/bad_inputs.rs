//! Bad inputs, as a careless user or a generator gone wrong makes them: each is
//! refused with a message that says what and where, quickly, and the session
//! goes on to run the next good save.

use crate::guests::print;
use crate::support::{Dir, live_wasm, once_fails};

/// A module whose one function nests `depth` blocks, in the binary format.
fn nested_wasm(depth: usize) -> Vec<u8> {
    let mut body = vec![0]; // no locals
    body.extend([0x02, 0x40].repeat(depth)); // block (empty type)
    body.extend(vec![0x0b; depth + 1]); // the ends, and the function's
    let mut code = vec![1]; // one body
    code.extend(leb128(body.len()));
    code.extend(body);
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend([1, 4, 1, 0x60, 0, 0]); // type: () -> ()
    wasm.extend([3, 2, 1, 0]); // function 0 of type 0
    wasm.push(10);
    wasm.extend(leb128(code.len()));
    wasm.extend(code);
    wasm
}

fn leb128(mut value: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(low);
            return bytes;
        }
        bytes.push(low | 0x80);
    }
}

#[test]
fn bad_modules_are_refused_with_what_and_where() {
    let dir = Dir::new();
    let write_bytes = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.path(name), bytes).expect("write");
    };
    dir.write("empty.wat", "");
    write_bytes("empty.wasm", b"");
    write_bytes("garbage.wat", &[0xff, 0xfe, 0x00, 0x80, 0x81]);
    write_bytes("garbage.wasm", b"\0asm\x01\0\0\0\xff\xff\xff\xff");
    let whole = wat::parse_str(print("cut short")).expect("valid");
    write_bytes("truncated.wasm", &whole[..whole.len() / 2]);
    dir.write(
        "huge_memory.wat",
        r#"(module (memory (export "memory") 65536) (func (export "_start")))"#,
    );
    let depth = 150_000;
    dir.write(
        "nested.wat",
        &format!(
            "(module\n(func (export \"_start\")\n{}{}))",
            "(block ".repeat(depth),
            ")".repeat(depth)
        ),
    );
    write_bytes("nested.wasm", &nested_wasm(depth));

    for (file, expected) in [
        ("empty.wat", "empty.wat:1:1"),
        ("empty.wasm", "empty.wasm: the file is empty"),
        ("garbage.wat", "garbage.wat: a .wat file must be UTF-8 text"),
        ("garbage.wasm", "garbage.wasm: invalid module"),
        ("truncated.wasm", "truncated.wasm: invalid module"),
        ("huge_memory.wat", "over --max-memory"),
        (
            "nested.wat",
            "nested.wat:3: parentheses nest more than 100000 deep",
        ),
        (
            "nested.wasm",
            "function 0 nests blocks more than 100000 deep",
        ),
    ] {
        once_fails(&dir, &["--max-memory", "64MiB", file], 1, expected);
    }
}

#[test]
fn after_each_bad_save_the_next_good_one_runs() {
    let dir = Dir::new();
    dir.write("main.wat", &print("good 1"));
    let mut live = live_wasm(&dir, &["main.wat"]);
    live.expect_stdout("good 1");
    live.expect_run(1, "start: ok");
    let mut run = 1;
    for bad in [
        String::new(),
        "\u{1b}]52;c;SGVsbG8=\u{7}".to_owned(),
        format!("(module (func {}))", "(block ".repeat(150_000)),
        "(module (memory 70000))".to_owned(),
    ] {
        run += 1;
        dir.write_rename("main.wat", &bad);
        let line = live.expect_run(run, "main.wat changed: error");
        assert!(!line.contains('\u{1b}'), "{line}");
        run += 1;
        dir.write_rename("main.wat", &print(&format!("good {run}")));
        live.expect_stdout(&format!("good {run}"));
        live.expect_run(run, "main.wat changed: ok");
    }
    // What the terminal saw of the escape sequence was shown, not obeyed.
    let stderr = live.transcript();
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}
