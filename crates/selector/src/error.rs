//! Parse errors: what went wrong and at which byte of the input.

use std::fmt;

/// The deepest nesting of parentheses the parser accepts.
///
/// Calico has no limit and simply recurses; an unbounded recursion would let a
/// hostile selector such as a million `(` overflow the stack, so fedmesh
/// rejects nesting deeper than this with [`ParseErrorKind::NestedTooDeeply`].
/// This is the one deliberate difference from Calico: no real selector comes
/// anywhere near it.
pub const MAX_NESTING: usize = 512;

/// The longest label (in bytes) Calico accepts, in comparisons and in `has()`.
pub const MAX_LABEL_LEN: usize = 512;

/// A selector that could not be parsed: what is wrong and where.
///
/// `offset` is the byte offset in the input of the token (or byte) at which
/// the problem was found. As in Calico, which tokenizes the whole input before
/// parsing, a lexical error anywhere in the input is reported in preference to
/// a syntax error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct ParseError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// Which prefix keyword lacked its closing parenthesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// `has(`
    Has,
    /// `all(`
    All,
    /// `global(`
    Global,
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Keyword::Has => "has(",
            Keyword::All => "all(",
            Keyword::Global => "global(",
        })
    }
}

/// What is wrong with a selector. The messages follow Calico's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A string literal has no closing quote (there are no escapes).
    #[error("unterminated string")]
    UnterminatedString,
    /// A lone `=`.
    #[error("expected ==")]
    ExpectedEquals,
    /// A lone `&`.
    #[error("expected &&")]
    ExpectedAnd,
    /// A lone `|`.
    #[error("expected ||")]
    ExpectedOr,
    /// A label followed by something that is neither punctuation nor an
    /// operator keyword.
    #[error("expected operator after label \"{label}\"")]
    ExpectedOperator {
        /// The label that was just read.
        label: String,
    },
    /// `has(`, `all(` or `global(` without its `)`.
    #[error("no closing ')' after {keyword}")]
    NoClosingParen {
        /// The keyword that was opened.
        keyword: Keyword,
    },
    /// A byte that cannot start a token here (e.g. `:`, a newline, or `has()`
    /// with no label).
    #[error("expected identifier")]
    ExpectedIdentifier,
    /// A label longer than [`MAX_LABEL_LEN`] bytes.
    #[error("label too long: {len} bytes (at most {MAX_LABEL_LEN})")]
    LabelTooLong {
        /// The label's length in bytes.
        len: usize,
    },
    /// A comparison operator not followed by a string literal.
    #[error("expected string")]
    ExpectedString,
    /// `in` / `not in` not followed by `{`.
    #[error("expected set literal")]
    ExpectedSetLiteral,
    /// A set literal not closed where it must be (`{,}`, `{"a" "b"}`).
    #[error("expected }}")]
    ExpectedCloseBrace,
    /// A parenthesised group without its `)`.
    #[error("expected )")]
    ExpectedCloseParen,
    /// The input ended in the middle of a comparison (a bare label).
    #[error("unexpected end of selector after label")]
    UnexpectedEnd,
    /// A token that cannot start an operation.
    #[error("unexpected token: {found}")]
    UnexpectedToken {
        /// A description of the token.
        found: &'static str,
    },
    /// A label followed by a token that is not a comparison operator.
    #[error("expected == or != not: {found}")]
    ExpectedComparison {
        /// A description of the token.
        found: &'static str,
    },
    /// A complete expression followed by more tokens.
    #[error("unexpected content at end of selector: {found}")]
    UnexpectedContentAtEnd {
        /// A description of the first extra token.
        found: &'static str,
    },
    /// Parentheses nested deeper than [`MAX_NESTING`] (a fedmesh limit that
    /// Calico does not have).
    #[error("selector nested too deeply (more than {MAX_NESTING} levels of parentheses)")]
    NestedTooDeeply,
}
