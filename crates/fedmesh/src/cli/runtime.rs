//! What the long-running subcommands share: the async runtime, logging, and
//! the shutdown signal.

use std::future::Future;

use anyhow::Context as _;

/// Runs `future` on a multi-threaded runtime.
pub(crate) fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One line per event, coloured only when stderr is a terminal.
    Text,
    /// One JSON object per line, with the span fields (the cluster a line is
    /// about) included, for log collectors.
    Json,
}

/// The logging options of the long-running subcommands.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LogArgs {
    /// Log filter (tracing-subscriber's EnvFilter syntax), e.g. `info` or
    /// `info,fedmesh_controller=debug`.
    #[arg(long = "log", value_name = "FILTER", env = "FEDMESH_LOG")]
    filter: Option<String>,
    /// Log line format.
    #[arg(long, value_enum, env = "FEDMESH_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

impl LogArgs {
    /// Sends logs to stderr, filtered by the given filter or `default`.
    pub(crate) fn init(&self, default: &str) -> anyhow::Result<()> {
        init_logging(self.filter.as_deref().unwrap_or(default), self.log_format)
    }
}

/// Sends logs to stderr, filtered by `filter` (EnvFilter syntax).
///
/// kube's HTTP client logs every failed request at ERROR without saying which
/// cluster it was for; fedmesh reports each failure itself, sorted, with the
/// cluster named and repeats summarised, so those lines are off unless the
/// filter names `kube_client`.
pub(crate) fn init_logging(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let directives = if filter.contains("kube_client") {
        filter.to_owned()
    } else {
        format!("{filter},kube_client::client::builder=off")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .with_context(|| format!("invalid log filter {filter:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (several commands in one test process) keeps the first.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    Ok(())
}

/// Completes on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Prints a line to stdout, ignoring a closed pipe (`fedmesh demo | head`
/// must not panic the demo while it runs).
pub(crate) fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
