//! The `live-wasm` command: parse flags, run the session, exit with its status.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // SAFETY: first thing, while this is the only thread.
    unsafe { live_wasm::move_code() };
    let cli = live_wasm::cli::Cli::parse();
    let json = cli.events_on_stderr();
    let status = cli
        .into_plan()
        .and_then(live_wasm::session::run)
        .unwrap_or_else(|err| {
            live_wasm::session::fatal(&err, json);
            2
        });
    std::process::exit(status);
}
