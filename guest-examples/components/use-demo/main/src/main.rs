//! A WASI 0.2 command that imports `demo:testmod/api@0.1.0`: live-wasm finds
//! `testmod.wasm` beside `main.wasm` and links it in on the first call.

wit_bindgen::generate!({
    path: "../wit",
    world: "main",
});

use demo::testmod::api;

fn main() {
    println!("{}", api::greet("live-wasm"));

    let stats = api::summarize(&[1.5, 2.5, 4.0, 8.0]);
    println!("summarize: count {}, mean {}", stats.count, stats.mean);

    for text in ["42", "-7", "forty-two"] {
        match api::parse_number(text) {
            Ok(number) => println!("parse-number {text:?}: ok {number}"),
            Err(message) => println!("parse-number {text:?}: error {message}"),
        }
    }
}
