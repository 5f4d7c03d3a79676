//! The tokenizer: Calico's byte-oriented, context-sensitive lexer, producing
//! one token at a time.
//!
//! Context matters in one place only: right after a label, a word is tried as
//! an operator keyword (`contains`, `starts with`, `ends with`, `not in`, `in`,
//! in that order); anywhere else `has(`, `all(` and `global(` are tried as
//! exact prefixes before falling back to a label. Hence keywords are not
//! reserved: `in in {"x"}` and `has == "x"` are ordinary comparisons.

use crate::error::{Keyword, MAX_LABEL_LEN, ParseError, ParseErrorKind};

/// A token's kind; labels and strings borrow the input bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    Label(&'a [u8]),
    Str(&'a [u8]),
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Eq,
    Ne,
    Not,
    And,
    Or,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Has(&'a [u8]),
    All,
    Global,
    Eof,
}

impl Tok<'_> {
    /// A short description for error messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Tok::Label(_) => "label",
            Tok::Str(_) => "string literal",
            Tok::LParen => "'('",
            Tok::RParen => "')'",
            Tok::LBrace => "'{'",
            Tok::RBrace => "'}'",
            Tok::Comma => "','",
            Tok::Eq => "'=='",
            Tok::Ne => "'!='",
            Tok::Not => "'!'",
            Tok::And => "'&&'",
            Tok::Or => "'||'",
            Tok::In => "'in'",
            Tok::NotIn => "'not in'",
            Tok::Contains => "'contains'",
            Tok::StartsWith => "'starts with'",
            Tok::EndsWith => "'ends with'",
            Tok::Has(_) => "has()",
            Tok::All => "all()",
            Tok::Global => "global()",
            Tok::Eof => "end of input",
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub(crate) tok: Tok<'a>,
    pub(crate) offset: usize,
}

/// Bytes allowed in a label: `[A-Za-z0-9_./-]`.
#[inline]
pub(crate) fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

/// Only space and tab separate tokens; any other whitespace is an error.
#[inline]
fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) struct Lexer<'a> {
    input: &'a [u8],
    pos: usize,
    after_label: bool,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Lexer<'a> {
        Lexer {
            input,
            pos: 0,
            after_label: false,
        }
    }

    fn rest(&self) -> &'a [u8] {
        self.input.get(self.pos..).unwrap_or_default()
    }

    fn skip_space_at(&self, mut pos: usize) -> usize {
        while self.input.get(pos).is_some_and(|&b| is_space(b)) {
            pos += 1;
        }
        pos
    }

    fn error(&self, offset: usize, kind: ParseErrorKind) -> ParseError {
        ParseError { offset, kind }
    }

    /// The next token. Every token but `Eof` consumes at least one byte, so
    /// repeated calls always reach `Eof` or an error.
    pub(crate) fn next_token(&mut self) -> Result<Token<'a>, ParseError> {
        self.pos = self.skip_space_at(self.pos);
        let start = self.pos;
        let rest = self.rest();
        let Some(&first) = rest.first() else {
            return Ok(Token {
                tok: Tok::Eof,
                offset: start,
            });
        };
        let second = rest.get(1).copied();
        let (tok, len) = match first {
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'{' => (Tok::LBrace, 1),
            b'}' => (Tok::RBrace, 1),
            b',' => (Tok::Comma, 1),
            b'"' | b'\'' => {
                let body = rest.get(1..).unwrap_or_default();
                match body.iter().position(|&b| b == first) {
                    Some(end) => (Tok::Str(body.get(..end).unwrap_or_default()), end + 2),
                    None => return Err(self.error(start, ParseErrorKind::UnterminatedString)),
                }
            }
            b'=' if second == Some(b'=') => (Tok::Eq, 2),
            b'=' => return Err(self.error(start, ParseErrorKind::ExpectedEquals)),
            b'!' if second == Some(b'=') => (Tok::Ne, 2),
            b'!' => (Tok::Not, 1),
            b'&' if second == Some(b'&') => (Tok::And, 2),
            b'&' => return Err(self.error(start, ParseErrorKind::ExpectedAnd)),
            b'|' if second == Some(b'|') => (Tok::Or, 2),
            b'|' => return Err(self.error(start, ParseErrorKind::ExpectedOr)),
            _ if self.after_label => self.operator(start)?,
            _ => self.word(start)?,
        };
        self.pos = start + len;
        self.after_label = matches!(tok, Tok::Label(_));
        Ok(Token { tok, offset: start })
    }

    /// After a label: one of the operator keywords, or an error.
    fn operator(&self, start: usize) -> Result<(Tok<'a>, usize), ParseError> {
        const OPERATORS: [(&[&[u8]], Tok<'static>); 5] = [
            (&[b"contains"], Tok::Contains),
            (&[b"starts", b"with"], Tok::StartsWith),
            (&[b"ends", b"with"], Tok::EndsWith),
            (&[b"not", b"in"], Tok::NotIn),
            (&[b"in"], Tok::In),
        ];
        for (words, tok) in OPERATORS {
            if let Some(end) = self.cut_words(start, words) {
                return Ok((tok, end - start));
            }
        }
        // The previous token was the label: find it again for the message by
        // walking back over spaces and label bytes.
        let mut label_end = start;
        while label_end > 0 && self.input.get(label_end - 1).is_some_and(|&b| is_space(b)) {
            label_end -= 1;
        }
        let mut label_start = label_end;
        while label_start > 0
            && self
                .input
                .get(label_start - 1)
                .is_some_and(|&b| is_label_byte(b))
        {
            label_start -= 1;
        }
        let label = self.input.get(label_start..label_end).unwrap_or_default();
        Err(self.error(
            start,
            ParseErrorKind::ExpectedOperator {
                label: String::from_utf8_lossy(label).into_owned(),
            },
        ))
    }

    /// Matches `words` at `start`, allowing any run of spaces/tabs (even
    /// none) between them, and requires a word boundary after the last one.
    /// As in Calico, spaces after a multi-word operator's last word are
    /// consumed before the boundary check. Returns the end offset.
    fn cut_words(&self, start: usize, words: &[&[u8]]) -> Option<usize> {
        let mut pos = start;
        for word in words {
            let rest = self.input.get(pos..)?;
            if !rest.starts_with(word) {
                return None;
            }
            pos += word.len();
            if words.len() > 1 {
                pos = self.skip_space_at(pos);
            }
        }
        match self.input.get(pos) {
            Some(&b) if is_label_byte(b) => None,
            _ => Some(pos),
        }
    }

    /// Not after a label: `has(label)`, `all()`, `global()` or a label.
    fn word(&self, start: usize) -> Result<(Tok<'a>, usize), ParseError> {
        let rest = self.rest();
        if rest.starts_with(b"has(") {
            let label_at = self.skip_space_at(start + 4);
            let label = self.cut_label(label_at)?;
            let close = self.skip_space_at(label_at + label.len());
            return match self.input.get(close) {
                Some(b')') => Ok((Tok::Has(label), close + 1 - start)),
                _ => Err(self.error(
                    close,
                    ParseErrorKind::NoClosingParen {
                        keyword: Keyword::Has,
                    },
                )),
            };
        }
        for (prefix, tok, keyword) in [
            (&b"all("[..], Tok::All, Keyword::All),
            (&b"global("[..], Tok::Global, Keyword::Global),
        ] {
            if rest.starts_with(prefix) {
                let close = self.skip_space_at(start + prefix.len());
                return match self.input.get(close) {
                    Some(b')') => Ok((tok, close + 1 - start)),
                    _ => Err(self.error(close, ParseErrorKind::NoClosingParen { keyword })),
                };
            }
        }
        let label = self.cut_label(start)?;
        Ok((Tok::Label(label), label.len()))
    }

    /// A 1..=512-byte label starting at `at`.
    fn cut_label(&self, at: usize) -> Result<&'a [u8], ParseError> {
        let rest = self.input.get(at..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| !is_label_byte(b))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(self.error(at, ParseErrorKind::ExpectedIdentifier));
        }
        if len > MAX_LABEL_LEN {
            return Err(self.error(at, ParseErrorKind::LabelTooLong { len }));
        }
        Ok(rest.get(..len).unwrap_or_default())
    }

    /// The first lexical error in the rest of the input, if any. Calico
    /// tokenizes everything before parsing, so such an error takes precedence
    /// over a syntax error found earlier in the input.
    pub(crate) fn first_error(&mut self) -> Option<ParseError> {
        loop {
            match self.next_token() {
                Ok(Token { tok: Tok::Eof, .. }) => return None,
                Ok(_) => {}
                Err(err) => return Some(err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(input: &str) -> Result<Vec<Tok<'_>>, ParseErrorKind> {
        let mut lexer = Lexer::new(input.as_bytes());
        let mut out = Vec::new();
        loop {
            match lexer.next_token() {
                Ok(Token { tok: Tok::Eof, .. }) => return Ok(out),
                Ok(token) => out.push(token.tok),
                Err(err) => return Err(err.kind),
            }
        }
    }

    #[test]
    fn punctuation_and_operators() {
        assert_eq!(
            lex("(){},==!=!&&||").unwrap(),
            vec![
                Tok::LParen,
                Tok::RParen,
                Tok::LBrace,
                Tok::RBrace,
                Tok::Comma,
                Tok::Eq,
                Tok::Ne,
                Tok::Not,
                Tok::And,
                Tok::Or
            ]
        );
        assert_eq!(lex("a = b"), Err(ParseErrorKind::ExpectedEquals));
        assert_eq!(lex("a & b"), Err(ParseErrorKind::ExpectedAnd));
        assert_eq!(lex("a | b"), Err(ParseErrorKind::ExpectedOr));
        // `!` followed by `=` is always `!=`.
        assert_eq!(
            lex("!==").unwrap_err(),
            ParseErrorKind::ExpectedEquals,
            "'!=' then a lone '='"
        );
    }

    #[test]
    fn keywords_are_recognised_only_after_a_label() {
        assert_eq!(
            lex("contains contains \"contains\"").unwrap(),
            vec![
                Tok::Label(b"contains"),
                Tok::Contains,
                Tok::Str(b"contains")
            ]
        );
        assert_eq!(
            lex("not in {}").unwrap(),
            vec![Tok::Label(b"not"), Tok::In, Tok::LBrace, Tok::RBrace]
        );
        assert_eq!(
            lex("a notin{").unwrap(),
            vec![Tok::Label(b"a"), Tok::NotIn, Tok::LBrace]
        );
        assert_eq!(
            lex("a starts \t with'x'").unwrap(),
            vec![Tok::Label(b"a"), Tok::StartsWith, Tok::Str(b"x")]
        );
        assert_eq!(
            lex("a endswith").unwrap(),
            vec![Tok::Label(b"a"), Tok::EndsWith]
        );
        assert_eq!(
            lex("a inf").unwrap_err(),
            ParseErrorKind::ExpectedOperator { label: "a".into() }
        );
        assert_eq!(lex("acontains").unwrap(), vec![Tok::Label(b"acontains")]);
    }

    #[test]
    fn prefix_keywords_need_their_parenthesis_directly() {
        assert_eq!(lex("has( a\t)").unwrap(), vec![Tok::Has(b"a")]);
        assert_eq!(lex("all( )global()").unwrap(), vec![Tok::All, Tok::Global]);
        assert_eq!(
            lex("has (a)").unwrap(),
            vec![
                Tok::Label(b"has"),
                Tok::LParen,
                Tok::Label(b"a"),
                Tok::RParen
            ]
        );
        assert_eq!(lex("has()"), Err(ParseErrorKind::ExpectedIdentifier));
        assert_eq!(
            lex("has(a b)"),
            Err(ParseErrorKind::NoClosingParen {
                keyword: Keyword::Has
            })
        );
        assert_eq!(
            lex("all(x)"),
            Err(ParseErrorKind::NoClosingParen {
                keyword: Keyword::All
            })
        );
    }

    #[test]
    fn strings_have_no_escapes() {
        assert_eq!(lex(r#""a\""#).unwrap(), vec![Tok::Str(b"a\\")]);
        assert_eq!(lex(r#"'"'"#).unwrap(), vec![Tok::Str(b"\"")]);
        assert_eq!(lex("\"abc"), Err(ParseErrorKind::UnterminatedString));
    }

    #[test]
    fn errors_carry_the_byte_offset() {
        let err = Lexer::new(b"a == \"x\" &&  b == 'y").first_error().unwrap();
        assert_eq!(err.kind, ParseErrorKind::UnterminatedString);
        assert_eq!(err.offset, 18);
    }
}
