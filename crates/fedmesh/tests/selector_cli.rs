//! `fedmesh selector eval` as a user runs it: the built binary, its exit status, its
//! output, and the --jsonl stream.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{
    Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio,
};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_fedmesh");

/// UniqueIDs that Calico itself gives (from the spec and the shared bench cases).
const ALL_UNIQUE_ID: &str = "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug";
const APP_FRONTEND_UNIQUE_ID: &str = "s:NgAztXgCjQllj3pd-bE8lGiQIfjv1kgSqFjDzg";

fn eval(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["selector", "eval"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> &str {
    std::str::from_utf8(&output.stdout).unwrap()
}

fn stderr(output: &Output) -> &str {
    std::str::from_utf8(&output.stderr).unwrap()
}

#[test]
fn readme_command_matches_and_prints_the_canonical_form() {
    let output = eval(&[
        r#"app == "web" && tier in {"fe", "be"}"#,
        "--labels",
        "app=web,tier=fe",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines: Vec<&str> = stdout(&output).lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], "matches:   yes");
    assert_eq!(
        lines[1],
        r#"canonical: (app == "web" && tier in {"be", "fe"})"#
    );
    assert!(lines[2].starts_with("unique_id: s:"), "{}", lines[2]);
    assert!(stderr(&output).is_empty());
}

#[test]
fn exit_status_is_zero_on_match_and_one_on_no_match() {
    let matched = eval(&["app == \"frontend\"", "--labels", "app=frontend"]);
    assert_eq!(matched.status.code(), Some(0));
    assert_eq!(
        stdout(&matched),
        format!(
            "matches:   yes\ncanonical: app == \"frontend\"\nunique_id: {APP_FRONTEND_UNIQUE_ID}\n"
        )
    );

    let unmatched = eval(&["app == 'frontend'", "--labels", "app=backend,tier=web"]);
    assert_eq!(unmatched.status.code(), Some(1));
    assert_eq!(
        stdout(&unmatched),
        format!(
            "matches:   no\ncanonical: app == \"frontend\"\nunique_id: {APP_FRONTEND_UNIQUE_ID}\n"
        )
    );
}

#[test]
fn labels_omitted_or_empty_mean_no_labels() {
    // `!=` matches an absent label, `==` does not.
    assert_eq!(eval(&["app != \"web\""]).status.code(), Some(0));
    assert_eq!(
        eval(&["app != \"web\"", "--labels", ""]).status.code(),
        Some(0)
    );
    assert_eq!(
        eval(&["app == \"web\"", "--labels", ""]).status.code(),
        Some(1)
    );
    let blank = eval(&[""]);
    assert_eq!(blank.status.code(), Some(0));
    assert!(
        stdout(&blank).contains(&format!("canonical: all()\nunique_id: {ALL_UNIQUE_ID}\n")),
        "{}",
        stdout(&blank)
    );
}

#[test]
fn labels_and_selectors_may_start_with_a_hyphen() {
    // `-a` is a valid Calico label; it must not be taken for an option.
    let output = eval(&["-a == \"x\"", "--labels", "-a=x"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("canonical: -a == \"x\"\n"));
}

#[test]
fn an_invalid_selector_exits_2_with_the_offset_and_a_caret() {
    let output = eval(&["app == \"web\" && tier", "--labels", "app=web"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).is_empty());
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    let offset: usize = lines[0]
        .strip_prefix("error: invalid selector: ")
        .and_then(|message| message.rsplit_once(" at byte "))
        .map(|(_, offset)| offset.parse().unwrap())
        .unwrap_or_else(|| panic!("no offset in {err}"));
    assert!((17..=21).contains(&offset), "{err}");
    assert_eq!(lines[1], "  app == \"web\" && tier");
    assert_eq!(lines[2], format!("  {}^", " ".repeat(offset)));
}

#[test]
fn an_unterminated_string_points_into_the_selector() {
    let output = eval(&["a == \"x"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unterminated string"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn malformed_labels_are_a_usage_error() {
    let output = eval(&["app == \"web\"", "--labels", "app=web,tier"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).is_empty());
    assert!(
        stderr(&output).contains(r#"label "tier" has no '=': expected key=value"#),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_selector_and_jsonl_together_are_a_usage_error() {
    let output = eval(&["--jsonl", "all()"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot be used with"),
        "{}",
        stderr(&output)
    );
    assert_eq!(eval(&[]).status.code(), Some(2));
}

/// Runs `--jsonl` on `input` and returns the parsed answer lines.
fn jsonl(input: &str) -> Vec<Value> {
    let mut child = Command::new(BIN)
        .args(["selector", "eval", "--jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn jsonl_answers_in_order_with_nulls_where_documented() {
    let answers = jsonl(concat!(
        r#"{"selector": "app == \"frontend\"", "labels": {"app": "frontend"}}"#,
        "\n",
        r#"{"selector": "app == \"frontend\"", "labels": {}}"#,
        "\n",
        r#"{"selector": "app == \"frontend\""}"#,
        "\n",
        r#"{"selector": "app = \"frontend\"", "labels": {"app": "frontend"}}"#,
        "\n",
        r#"{"selector": "", "labels": {"x": "y"}}"#,
        "\n",
    ));
    assert_eq!(
        answers,
        [
            json!({"valid": true, "error": null, "canonical": "app == \"frontend\"",
                   "unique_id": APP_FRONTEND_UNIQUE_ID, "matches": true}),
            json!({"valid": true, "error": null, "canonical": "app == \"frontend\"",
                   "unique_id": APP_FRONTEND_UNIQUE_ID, "matches": false}),
            json!({"valid": true, "error": null, "canonical": "app == \"frontend\"",
                   "unique_id": APP_FRONTEND_UNIQUE_ID, "matches": null}),
            json!({"valid": false, "error": answers[3]["error"], "canonical": null,
                   "unique_id": null, "matches": null}),
            json!({"valid": true, "error": null, "canonical": "all()",
                   "unique_id": ALL_UNIQUE_ID, "matches": true}),
        ]
    );
    let error = answers[3]["error"].as_str().unwrap();
    assert!(
        error.contains("expected ==") && error.contains("at byte 4"),
        "{error}"
    );
}

#[test]
fn jsonl_keeps_the_key_order_of_the_contract() {
    let mut child = Command::new(BIN)
        .args(["selector", "eval", "--jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"selector\": \"all()\"}\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        stdout(&output),
        format!(
            "{{\"valid\":true,\"error\":null,\"canonical\":\"all()\",\"unique_id\":\"{ALL_UNIQUE_ID}\",\"matches\":null}}\n"
        )
    );
}

#[test]
fn jsonl_answers_malformed_lines_with_an_error_and_goes_on() {
    let answers = jsonl(concat!(
        "{\"selector\": \"has(a)\", \"labels\": {\"a\": \"\"}}\n",
        "not json at all\n",
        "\n",
        "{\"labels\": {\"a\": \"b\"}}\n",
        "{\"selector\": \"has(a)\", \"labels\": {\"a\": 7}}\n",
        "{\"selector\": 5}\n",
        "{\"selector\": \"has(a)\", \"labels\": {\"a\": \"b\"}}",
    ));
    assert_eq!(answers.len(), 7);
    assert_eq!(answers[0]["matches"], true);
    assert_eq!(answers[6]["matches"], true);
    let expectations = [
        (1, "input line 2: invalid JSON input"),
        (2, "input line 3: empty line"),
        (3, "missing field `selector`"),
        (4, "expected a string"),
        (5, "expected a string"),
    ];
    for (index, needle) in expectations {
        let answer = &answers[index];
        assert_eq!(answer["valid"], false, "{answer}");
        assert_eq!(answer["canonical"], Value::Null, "{answer}");
        assert_eq!(answer["unique_id"], Value::Null, "{answer}");
        assert_eq!(answer["matches"], Value::Null, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(needle), "{error} should contain {needle}");
    }
}

/// A `--jsonl` child that is killed if it outlives `limit`, so no test can hang.
struct JsonlChild {
    pid: u32,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: ChildStderr,
    watchdog: JoinHandle<Option<ExitStatus>>,
}

impl JsonlChild {
    fn spawn(limit: Duration) -> JsonlChild {
        let mut child = Command::new(BIN)
            .args(["selector", "eval", "--jsonl"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let pid = child.id();
        let watchdog = thread::spawn(move || watch(child, limit));
        JsonlChild {
            pid,
            stdin: Some(stdin),
            stdout,
            stderr,
            watchdog,
        }
    }

    fn stdin(&mut self) -> &mut ChildStdin {
        self.stdin.as_mut().unwrap()
    }

    fn read_answer(&mut self) -> Value {
        let mut line = String::new();
        let read = self.stdout.read_line(&mut line).unwrap();
        assert!(read > 0, "fedmesh closed its output early (or was killed)");
        serde_json::from_str(&line).unwrap()
    }

    /// The child's peak resident set size in KiB, read while it is still running.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().strip_suffix("kB"))
            .map(|kib| kib.trim().parse().unwrap())
            .unwrap_or_else(|| panic!("no VmHWM in {status}"))
    }

    /// Closes stdin and returns the exit status (None if the watchdog had to kill it).
    fn finish(self) -> Option<ExitStatus> {
        drop(self.stdin);
        self.watchdog.join().unwrap()
    }
}

fn watch(mut child: Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn jsonl_answers_each_line_as_soon_as_it_arrives() {
    let mut child = JsonlChild::spawn(Duration::from_secs(20));
    for value in ["web", "db"] {
        writeln!(
            child.stdin(),
            "{}",
            json!({"selector": "app == 'web'", "labels": {"app": value}})
        )
        .unwrap();
        child.stdin().flush().unwrap();
        // stdin stays open: the answer must come without waiting for more input.
        assert_eq!(child.read_answer()["matches"], value == "web");
    }
    assert_eq!(child.finish().and_then(|s| s.code()), Some(0));
}

#[test]
fn jsonl_stops_quietly_when_the_reader_goes_away() {
    let mut child = JsonlChild::spawn(Duration::from_secs(20));
    writeln!(child.stdin(), "{}", json!({"selector": "all()"})).unwrap();
    child.stdin().flush().unwrap();
    assert_eq!(child.read_answer()["valid"], true);
    // Close the read end, as `| head -1` would, then keep asking.
    let JsonlChild {
        pid,
        stdin,
        stdout,
        mut stderr,
        watchdog,
    } = child;
    drop(stdout);
    let mut stdin = stdin.unwrap();
    for _ in 0..10_000 {
        if writeln!(stdin, "{}", json!({"selector": "all()"})).is_err() {
            break; // fedmesh has exited: its stdin is closed too.
        }
    }
    drop(stdin);
    let status = watchdog.join().unwrap();
    let mut message = String::new();
    stderr.read_to_string(&mut message).unwrap();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "pid {pid}: {message}"
    );
    assert!(message.is_empty(), "{message}");
}

/// The i-th line of the streaming test: distinct selectors so that order is checked,
/// every 7th invalid, and padding so the input is far larger than the memory allowed.
fn streaming_line(i: usize) -> String {
    let selector = if i.is_multiple_of(7) {
        format!("n == \"{i}\" &&")
    } else {
        format!("n == \"{i}\" || pad == \"0\"")
    };
    let value = if i.is_multiple_of(3) { i + 1 } else { i };
    let pad = "p".repeat(100);
    format!(
        "{}\n",
        json!({"selector": selector, "labels": {"n": value.to_string(), "pad": pad}})
    )
}

fn check_streaming_answer(i: usize, answer: &Value) {
    if i.is_multiple_of(7) {
        assert_eq!(answer["valid"], false, "line {i}: {answer}");
        assert_eq!(answer["matches"], Value::Null, "line {i}: {answer}");
    } else {
        assert_eq!(
            answer["canonical"],
            format!("(n == \"{i}\" || pad == \"0\")"),
            "line {i}: {answer}"
        );
        assert_eq!(
            answer["matches"],
            !i.is_multiple_of(3),
            "line {i}: {answer}"
        );
    }
}

#[test]
fn jsonl_streams_in_constant_memory() {
    // Small enough that questions and answers both fit in the pipes' buffers while
    // this thread writes them all before reading any answer.
    const WARM_UP: usize = 200;
    const TOTAL: usize = 200_000;
    let mut child = JsonlChild::spawn(Duration::from_secs(25));

    for i in 0..WARM_UP {
        child
            .stdin()
            .write_all(streaming_line(i).as_bytes())
            .unwrap();
    }
    child.stdin().flush().unwrap();
    for i in 0..WARM_UP {
        check_streaming_answer(i, &child.read_answer());
    }
    let warm_peak = child.peak_rss_kib();

    // Feed the rest from another thread while answers are read here, as a pipe would.
    let mut stdin = child.stdin.take().unwrap();
    let feeder = thread::spawn(move || {
        let mut written = 0;
        for i in WARM_UP..TOTAL {
            let line = streaming_line(i);
            written += line.len();
            stdin.write_all(line.as_bytes()).unwrap();
        }
        stdin.flush().unwrap();
        (stdin, written)
    });
    for i in WARM_UP..TOTAL {
        check_streaming_answer(i, &child.read_answer());
    }
    let (stdin, written) = feeder.join().unwrap();
    // Read while the process still waits for more input, before it can exit.
    let final_peak = child.peak_rss_kib();
    drop(stdin);
    assert!(
        written > 25 << 20,
        "the input ({written} bytes) is too small to tell"
    );
    assert!(
        final_peak < warm_peak + 8 * 1024,
        "peak RSS grew from {warm_peak} KiB to {final_peak} KiB over {written} bytes of input"
    );
    assert_eq!(child.finish().and_then(|s| s.code()), Some(0));
}
