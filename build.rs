//! Links the `live-wasm` binary with its segments aligned to 2 MiB on Linux,
//! so that its code can be put on huge pages at start (see `src/huge_pages.rs`).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,max-page-size=0x200000");
        // `benches/compile_phases.rs` times compiles as the binary does them.
        println!("cargo:rustc-link-arg-benches=-Wl,-z,max-page-size=0x200000");
    }
}
