//! A WASI 0.2 command: `wasm32-wasip2` makes cargo's output a component that
//! exports `wasi:cli/run`. Edit and save: live-wasm builds and runs it again.

fn main() {
    println!("hello from a WASI 0.2 component");

    let args: Vec<String> = std::env::args().collect();
    println!("args: {args:?}");

    match std::env::var("GREETING") {
        Ok(greeting) => println!("GREETING is set: {greeting}"),
        Err(_) => println!("GREETING is not set (try --env GREETING=hi)"),
    }
}
