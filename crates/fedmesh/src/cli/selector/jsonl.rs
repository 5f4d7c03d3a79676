//! `fedmesh selector eval --jsonl`: one JSON answer line per JSON input line, streamed.
//!
//! Memory stays constant however long the input is: one line is read into a reused
//! buffer, answered, and written through a buffered writer before the next is read.
//! Output is flushed whenever the input buffer runs dry, i.e. just before a read that
//! may block, so a consumer at the other end of a pipe (or a program talking to this
//! one line by line) sees every answer whose question has arrived.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};

use fedmesh_selector::Selector;
use serde::{Deserialize, Serialize};

/// Longest accepted input line. Longer lines are answered with an error and skipped
/// without being held in memory, so a stray binary file cannot exhaust memory.
pub(crate) const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// A buffer that grew past this for one long line is given back after that line.
const KEPT_LINE_CAPACITY: usize = 64 * 1024;

/// One input line.
#[derive(Debug, Deserialize)]
struct Question {
    selector: String,
    /// `None` when the key is absent or `null`: the answer's `matches` is then null.
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// One output line; the field order is the documented one.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct Answer<'a> {
    valid: bool,
    error: Option<String>,
    canonical: Option<&'a str>,
    unique_id: Option<&'a str>,
    matches: Option<bool>,
}

impl Answer<'_> {
    fn rejected(error: String) -> Self {
        Answer {
            valid: false,
            error: Some(error),
            canonical: None,
            unique_id: None,
            matches: None,
        }
    }
}

/// What reading one line produced.
enum Line {
    Complete,
    TooLong,
    EndOfInput,
}

/// Answers every line of `input` on `output`, in order, and flushes at the end.
pub(crate) fn answer_stream<R: Read, W: Write>(
    mut input: BufReader<R>,
    mut output: W,
) -> io::Result<()> {
    let mut line = Vec::new();
    let mut number: u64 = 0;
    loop {
        if input.buffer().is_empty() {
            output.flush()?;
        }
        line.clear();
        if line.capacity() > KEPT_LINE_CAPACITY {
            line.shrink_to(KEPT_LINE_CAPACITY);
        }
        let read = read_line(&mut input, &mut line)?;
        number += 1;
        match read {
            Line::EndOfInput => break,
            Line::TooLong => write_answer(
                &mut output,
                &Answer::rejected(format!(
                    "input line {number}: longer than {MAX_LINE_BYTES} bytes"
                )),
            )?,
            Line::Complete => answer_line(&line, number, &mut output)?,
        }
    }
    output.flush()
}

/// Reads up to and excluding the next `\n` into `line`, keeping at most
/// `MAX_LINE_BYTES` bytes and discarding the rest of a longer line.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Line> {
    let mut seen_any = false;
    let mut too_long = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if chunk.is_empty() {
            return Ok(match (seen_any, too_long) {
                (false, _) => Line::EndOfInput,
                (true, false) => Line::Complete,
                (true, true) => Line::TooLong,
            });
        }
        seen_any = true;
        let (content, consumed, ended) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (&chunk[..at], at + 1, true),
            None => (chunk, chunk.len(), false),
        };
        if !too_long && line.len() + content.len() <= MAX_LINE_BYTES {
            line.extend_from_slice(content);
        } else {
            too_long = true;
            line.clear();
        }
        input.consume(consumed);
        if ended {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

fn answer_line(line: &[u8], number: u64, output: &mut impl Write) -> io::Result<()> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return write_answer(
            output,
            &Answer::rejected(format!("input line {number}: empty line")),
        );
    }
    // serde would also accept a JSON array as the fields in order; only objects are meant.
    if line.trim_ascii_start().first() != Some(&b'{') {
        return write_answer(
            output,
            &Answer::rejected(format!(
                "input line {number}: invalid JSON input: expected an object {{\"selector\": ...}}"
            )),
        );
    }
    let question: Question = match serde_json::from_slice(line) {
        Ok(question) => question,
        Err(err) => {
            return write_answer(
                output,
                &Answer::rejected(format!("input line {number}: {}", describe(&err))),
            );
        }
    };
    match Selector::parse(&question.selector) {
        Ok(selector) => write_answer(
            output,
            &Answer {
                valid: true,
                error: None,
                canonical: Some(selector.canonical()),
                unique_id: Some(selector.unique_id()),
                matches: question.labels.map(|labels| selector.matches(&labels)),
            },
        ),
        Err(parse_error) => write_answer(output, &Answer::rejected(parse_error.to_string())),
    }
}

/// serde_json's message with the position given as a column: every input is one line,
/// so its "at line 1 column N" suffix would only mislead.
fn describe(err: &serde_json::Error) -> String {
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match full.strip_suffix(&suffix) {
        Some(message) => format!("invalid JSON input: {message} (column {})", err.column()),
        None => format!("invalid JSON input: {full}"),
    }
}

fn write_answer(output: &mut impl Write, answer: &Answer<'_>) -> io::Result<()> {
    serde_json::to_writer(&mut *output, answer)?;
    output.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Read};

    use serde_json::{Value, json};

    use super::{MAX_LINE_BYTES, answer_stream};

    fn answers(input: impl Read) -> Vec<Value> {
        let mut output = Vec::new();
        answer_stream(BufReader::new(input), &mut output).unwrap();
        let text = String::from_utf8(output).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'));
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    fn error_of(answer: &Value) -> &str {
        assert_eq!(answer["valid"], false, "{answer}");
        assert_eq!(answer["canonical"], Value::Null);
        assert_eq!(answer["unique_id"], Value::Null);
        assert_eq!(answer["matches"], Value::Null);
        answer["error"].as_str().unwrap()
    }

    #[test]
    fn answers_each_line_in_order_with_the_null_rules() {
        let input = concat!(
            r#"{"selector": "app == 'web'", "labels": {"app": "web"}}"#,
            "\n",
            r#"{"selector": "app == 'web'", "labels": {"app": "db"}}"#,
            "\n",
            r#"{"selector": "app == 'web'"}"#,
            "\n",
            r#"{"selector": "app == 'web'", "labels": null}"#,
            "\n",
            r#"{"selector": "app ==", "labels": {"app": "web"}}"#,
            "\n",
            r#"{"selector": "", "labels": {}}"#,
        );
        let answers = answers(input.as_bytes());
        assert_eq!(answers.len(), 6);
        assert_eq!(
            answers[0],
            json!({"valid": true, "error": null, "canonical": "app == \"web\"",
                   "unique_id": answers[0]["unique_id"], "matches": true})
        );
        assert!(answers[0]["unique_id"].as_str().unwrap().starts_with("s:"));
        assert_eq!(answers[1]["matches"], false);
        assert_eq!(answers[2]["valid"], true);
        assert_eq!(answers[2]["matches"], Value::Null);
        assert_eq!(answers[3]["matches"], Value::Null);
        assert!(error_of(&answers[4]).contains("at byte"), "{}", answers[4]);
        assert_eq!(answers[5]["canonical"], "all()");
        assert_eq!(answers[5]["matches"], true);
    }

    #[test]
    fn malformed_lines_get_an_error_answer_and_processing_continues() {
        let input = concat!(
            "not json\n",
            "\n",
            "{\"labels\": {}}\n",
            "{\"selector\": \"a == 'x'\", \"labels\": {\"a\": 1}}\n",
            "[\"a == 'x'\"]\n",
            "{\"selector\": \"has(a)\", \"labels\": {\"a\": \"\"}}\r\n",
        );
        let answers = answers(input.as_bytes());
        assert_eq!(answers.len(), 6);
        assert!(error_of(&answers[0]).starts_with("input line 1: invalid JSON input"));
        assert_eq!(error_of(&answers[1]), "input line 2: empty line");
        assert!(error_of(&answers[2]).contains("missing field `selector`"));
        assert!(error_of(&answers[3]).contains("expected a string"));
        assert_eq!(
            error_of(&answers[4]),
            "input line 5: invalid JSON input: expected an object {\"selector\": ...}"
        );
        assert_eq!(answers[5]["matches"], true);
    }

    #[test]
    fn invalid_utf8_in_a_line_is_an_input_error() {
        let answers = answers(&b"{\"selector\": \"a == '\xff'\"}\n{\"selector\": \"all()\"}"[..]);
        assert_eq!(answers.len(), 2);
        assert!(error_of(&answers[0]).starts_with("input line 1: invalid JSON input"));
        assert_eq!(answers[1]["valid"], true);
    }

    #[test]
    fn an_overlong_line_is_skipped_without_being_kept() {
        let mut input = b"{\"selector\": \"".to_vec();
        input.resize(MAX_LINE_BYTES + 10, b'a');
        input.extend_from_slice(b"\"}\n{\"selector\": \"all()\"}\n");
        let answers = answers(&input[..]);
        assert_eq!(answers.len(), 2);
        assert!(error_of(&answers[0]).contains("longer than"));
        assert_eq!(answers[1]["canonical"], "all()");
    }

    #[test]
    fn empty_input_gives_no_answers() {
        assert!(answers(&b""[..]).is_empty());
    }
}
