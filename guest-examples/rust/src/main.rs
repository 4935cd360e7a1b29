//! A WASI command in Rust that uses a function from a sibling module, `testmod`
//! (testmod.wat, beside Cargo.toml): live-wasm links it on first call.

#[link(wasm_import_module = "testmod")]
unsafe extern "C" {
    fn function(x: i32) -> i32;
}

fn main() {
    println!("Hello from Rust!");
    // SAFETY: testmod's `function` takes and returns an i32, nothing else.
    let answer = unsafe { function(20) };
    println!("testmod.function(20) = {answer}");
}
