//! The `fedmesh` command line.
//!
//! `main.rs` only calls [`run`]; every subcommand lives under [`cli`] so that the
//! binary and the integration tests exercise the same code.

mod apiserver_cmd;
mod cli;

use std::process::ExitCode;

/// Runs the command line with the process's arguments and returns its exit status.
///
/// Usage errors exit with status 2 (clap's convention, shared with `grep`-like tools);
/// each subcommand documents its own statuses.
pub fn run() -> ExitCode {
    cli::run(std::env::args_os())
}
