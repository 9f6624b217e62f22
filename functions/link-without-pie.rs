//! The build script of the four Lambda crates (`build = "../link-without-pie.rs"` in each
//! Cargo.toml): their binaries link as ordinary, non-PIE executables on Linux, so the dynamic
//! loader no longer patches ~55,000 pointers (and copies 1.4 MB of pages) before `main`: about
//! 2 ms of every cold start. The executable's own image is then at a fixed address; what that
//! costs, and how to go back, is in docs/release-profile.md ("Linked without PIE"). Tests, the
//! local runner and the tools stay PIE (`-bins`: this package's binaries only).

fn main() {
    println!("cargo:rerun-if-changed=../link-without-pie.rs");
    // Linux only: the macOS linker has no such flag, and `cargo build` on a Mac builds these
    // binaries too (only Linux builds are deployed).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
