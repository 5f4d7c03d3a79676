//! The `fedmesh` command line.

/// Runs the command line and returns the process exit status.
pub fn run() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
