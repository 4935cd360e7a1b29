//! The `live-wasm` command: parse flags, run the session, exit with its status.

use clap::Parser;

fn main() {
    let cli = live_wasm::cli::Cli::parse();
    let status = cli
        .into_plan()
        .and_then(live_wasm::session::run)
        .unwrap_or_else(|err| {
            eprintln!("live-wasm: error: {err:#}");
            2
        });
    std::process::exit(status);
}
