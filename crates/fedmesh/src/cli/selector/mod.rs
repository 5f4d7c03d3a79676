//! `fedmesh selector`: check Calico selectors before they go into a
//! `federation.tigera.io/serviceSelector` annotation.

mod diagnostic;
mod eval;
mod jsonl;
mod label_list;

use std::process::ExitCode;

use clap::{Args, Subcommand};

/// Arguments of `fedmesh selector`.
#[derive(Debug, Args)]
pub(crate) struct SelectorArgs {
    #[command(subcommand)]
    command: SelectorCommand,
}

#[derive(Debug, Subcommand)]
enum SelectorCommand {
    /// Parse a selector, print its canonical form and unique id, and match it against labels.
    ///
    /// Exit status: 0 when the selector matches, 1 when it does not, 2 when it is
    /// invalid or the arguments are wrong. With --jsonl, 0 at the end of the input.
    Eval(eval::EvalArgs),
}

impl SelectorArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            SelectorCommand::Eval(args) => args.run(),
        }
    }
}
