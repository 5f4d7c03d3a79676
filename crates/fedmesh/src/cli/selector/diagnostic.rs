//! Shows where in a selector a parse error is, the way a compiler does.

/// Longest stretch of the selector shown; a longer one is cut around the error.
const WINDOW: usize = 100;
const ELLIPSIS: &str = "...";

/// Renders `source` on one line and a caret under byte `offset`, both indented by
/// `indent`, without a trailing newline.
///
/// Control characters (newline, tab, ...) are shown escaped so that the caret stays
/// under the right byte and the selector stays on one line. An offset past the end
/// puts the caret just after the last character; an offset inside a multi-byte
/// character points at that character.
pub(crate) fn caret_snippet(source: &str, offset: usize, indent: &str) -> String {
    let mut shown: Vec<char> = Vec::with_capacity(source.len());
    let mut caret = None;
    for (at, ch) in source.char_indices() {
        if caret.is_none() && at + ch.len_utf8() > offset {
            caret = Some(shown.len());
        }
        if ch.is_control() {
            shown.extend(ch.escape_default());
        } else {
            shown.push(ch);
        }
    }
    let caret = caret.unwrap_or(shown.len());

    let (start, end) = if shown.len() <= WINDOW {
        (0, shown.len())
    } else {
        let start = caret.saturating_sub(WINDOW / 2).min(shown.len() - WINDOW);
        (start, start + WINDOW)
    };
    let mut line: String = String::from(indent);
    let mut caret_column = caret - start;
    if start > 0 {
        line.push_str(ELLIPSIS);
        caret_column += ELLIPSIS.len();
    }
    line.extend(&shown[start..end]);
    if end < shown.len() {
        line.push_str(ELLIPSIS);
    }
    format!("{line}\n{indent}{:caret_column$}^", "")
}

#[cfg(test)]
mod tests {
    use super::caret_snippet;

    #[test]
    fn caret_sits_under_the_offset() {
        assert_eq!(caret_snippet("a b", 2, "  "), "  a b\n    ^");
        assert_eq!(caret_snippet("a", 0, ""), "a\n^");
    }

    #[test]
    fn offset_at_end_points_past_the_last_character() {
        assert_eq!(caret_snippet("a ==", 4, ""), "a ==\n    ^");
        assert_eq!(caret_snippet("", 0, ""), "\n^");
    }

    #[test]
    fn control_characters_are_escaped_and_counted() {
        // The newline is byte 8; it is shown as the two characters `\n`.
        assert_eq!(
            caret_snippet("a == \"x\"\n", 8, ""),
            "a == \"x\"\\n\n        ^"
        );
        assert_eq!(caret_snippet("\tb c", 3, ""), "\\tb c\n    ^");
    }

    #[test]
    fn multibyte_characters_take_one_column() {
        // "ü" is two bytes: offsets 0 and 1 both point at it, 2 at the space.
        assert_eq!(caret_snippet("ü x", 1, ""), "ü x\n^");
        assert_eq!(caret_snippet("ü x", 2, ""), "ü x\n ^");
    }

    #[test]
    fn long_selectors_are_cut_around_the_offset() {
        let source = format!("{}X{}", "a".repeat(300), "b".repeat(300));
        let snippet = caret_snippet(&source, 300, "");
        let (line, caret) = snippet.split_once('\n').unwrap();
        assert!(line.starts_with("...a") && line.ends_with("b..."), "{line}");
        assert_eq!(line.len(), 100 + 2 * 3);
        assert_eq!(line.find('X').unwrap(), caret.len() - 1);
    }
}
