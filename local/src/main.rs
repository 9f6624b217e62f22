//! `cargo run [-- <command>]`: the local stack and the manage.py-style commands.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    local::run(local::Cli::parse())
}
