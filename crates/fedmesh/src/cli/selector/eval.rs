//! `fedmesh selector eval`: one selector from the command line, or a stream of JSON lines.

use std::io::{self, BufReader, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use fedmesh_selector::Selector;

use super::diagnostic::caret_snippet;
use super::jsonl;
use super::label_list::LabelList;

/// Buffer size for --jsonl input and output: large enough that a bulk pipe costs few
/// system calls, small enough to keep the memory use of the stream constant and low.
const STREAM_BUFFER: usize = 64 * 1024;

/// Arguments of `fedmesh selector eval`.
#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The selector, e.g. 'app == "web" && tier in {"fe", "be"}' (quote it for the shell).
    #[arg(
        required_unless_present = "jsonl",
        conflicts_with = "jsonl",
        allow_hyphen_values = true
    )]
    selector: Option<String>,

    /// Labels to match against: comma-separated key=value pairs. Omitted or '' means no labels.
    #[arg(
        long,
        value_name = "K=V,...",
        conflicts_with = "jsonl",
        allow_hyphen_values = true
    )]
    labels: Option<LabelList>,

    /// Read JSON lines {"selector": "...", "labels": {"k": "v"}} from stdin and write one
    /// JSON answer line per input line to stdout, in order.
    #[arg(long)]
    jsonl: bool,
}

/// The outcome of checking one selector, which is also the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Match,
    NoMatch,
    Invalid,
}

impl From<Verdict> for ExitCode {
    fn from(verdict: Verdict) -> ExitCode {
        ExitCode::from(match verdict {
            Verdict::Match => 0,
            Verdict::NoMatch => 1,
            Verdict::Invalid => 2,
        })
    }
}

impl EvalArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        if self.jsonl {
            let input = BufReader::with_capacity(STREAM_BUFFER, io::stdin().lock());
            let output = BufWriter::with_capacity(STREAM_BUFFER, io::stdout().lock());
            return match jsonl::answer_stream(input, output) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                // The reader went away (`... | head`): nobody is left to answer, which
                // is how a pipeline ends early, not a failure worth a message.
                Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
                Err(err) => Err(err).context("selector eval --jsonl"),
            };
        }
        // clap enforces that the selector is present without --jsonl.
        let source = self
            .selector
            .context("a selector is required unless --jsonl is given")?;
        let labels = self.labels.unwrap_or_default();
        let verdict = eval_one(
            &source,
            &labels,
            &mut io::stdout().lock(),
            &mut io::stderr(),
        )?;
        Ok(verdict.into())
    }
}

/// Writes the answer for one selector: a report on `out` when it parses, the error with
/// a caret under its byte offset on `err` when it does not.
fn eval_one(
    source: &str,
    labels: &LabelList,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<Verdict> {
    let selector = match Selector::parse(source) {
        Ok(selector) => selector,
        Err(parse_error) => {
            writeln!(err, "error: invalid selector: {parse_error}")?;
            writeln!(err, "{}", caret_snippet(source, parse_error.offset, "  "))?;
            return Ok(Verdict::Invalid);
        }
    };
    let matched = selector.matches(labels.as_map());
    writeln!(out, "matches:   {}", if matched { "yes" } else { "no" })?;
    writeln!(out, "canonical: {}", selector.canonical())?;
    writeln!(out, "unique_id: {}", selector.unique_id())?;
    out.flush()?;
    Ok(if matched {
        Verdict::Match
    } else {
        Verdict::NoMatch
    })
}

#[cfg(test)]
mod tests {
    use super::{LabelList, Verdict, eval_one};

    fn eval(source: &str, labels: &str) -> (Verdict, String, String) {
        let labels: LabelList = labels.parse().unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let verdict = eval_one(source, &labels, &mut out, &mut err).unwrap();
        (
            verdict,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn a_match_reports_canonical_form_and_unique_id() {
        let (verdict, out, err) =
            eval(r#"app == "web" && tier in {"fe", "be"}"#, "app=web,tier=fe");
        assert_eq!(verdict, Verdict::Match);
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("matches:   yes"));
        assert_eq!(
            lines.next(),
            Some(r#"canonical: (app == "web" && tier in {"be", "fe"})"#)
        );
        let unique_id = lines.next().unwrap().strip_prefix("unique_id: s:").unwrap();
        // base64url without padding of a 28-byte SHA-224 digest.
        assert_eq!(unique_id.len(), 38);
        assert!(err.is_empty());
    }

    #[test]
    fn no_labels_and_absent_label_semantics() {
        assert_eq!(eval("app != \"web\"", "").0, Verdict::Match);
        assert_eq!(eval("app == \"web\"", "").0, Verdict::NoMatch);
        let (verdict, out, _) = eval("", "");
        assert_eq!(verdict, Verdict::Match);
        assert!(out.contains("canonical: all()\n"), "{out}");
        assert!(out.contains("unique_id: s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug\n"));
    }

    #[test]
    fn an_invalid_selector_shows_the_error_under_its_offset() {
        let (verdict, out, err) = eval("a b", "");
        assert_eq!(verdict, Verdict::Invalid);
        assert!(out.is_empty());
        let lines: Vec<&str> = err.lines().collect();
        assert!(lines[0].starts_with("error: invalid selector: "), "{err}");
        assert!(lines[0].contains("at byte 2"), "{err}");
        assert_eq!(lines[1..], ["  a b", "    ^"]);
    }
}
