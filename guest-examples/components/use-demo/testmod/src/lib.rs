//! A component that exports `demo:testmod/api@0.1.0` (and no `wasi:cli/run`):
//! what `main.wasm` uses.

wit_bindgen::generate!({
    path: "../wit",
    world: "testmod",
});

use exports::demo::testmod::api::{Guest, Stats};

struct Testmod;

impl Guest for Testmod {
    fn greet(name: String) -> String {
        format!("hello, {name}, from testmod")
    }

    fn summarize(values: Vec<f64>) -> Stats {
        let count = values.len() as u32;
        let mean = if values.is_empty() {
            0.0
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        };
        Stats { count, mean }
    }

    fn parse_number(text: String) -> Result<i32, String> {
        text.trim()
            .parse()
            .map_err(|error| format!("{text:?} is not a number: {error}"))
    }
}

export!(Testmod);
