//! A WASI command in Rust that calls a module written in C, `fib` (fib.c, built
//! into fib.wasm beside Cargo.toml): live-wasm links it on first call. Edit
//! either file, save, and the program re-runs.

#[link(wasm_import_module = "fib")]
unsafe extern "C" {
    fn fib(n: i32) -> i32;
}

fn main() {
    println!("Hello from Rust, with C!");
    for n in [10, 20] {
        // SAFETY: fib.c's `fib` takes and returns an i32, nothing else.
        let answer = unsafe { fib(n) };
        println!("fib({n}) = {answer}");
    }
}
