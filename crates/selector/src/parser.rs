//! The recursive-descent parser (Calico's `parseRoot` and friends).
//!
//! ```text
//! selector  = [ or_expr ] EOF
//! or_expr   = and_expr { "||" and_expr }
//! and_expr  = operation { "&&" operation }
//! operation = { "!" } primary
//! primary   = "has(" label ")" | "all(" ")" | "global(" ")"
//!           | label ( "==" | "!=" | "contains" | "starts with" | "ends with" ) string
//!           | label ( "in" | "not in" ) "{" [ string { "," string } [ "," ] ] "}"
//!           | "(" or_expr ")"
//! ```
//!
//! The parser pulls tokens from the lexer one at a time instead of tokenizing
//! the whole input first, so a parse allocates only the tree. To report the
//! same error Calico would, a syntax error triggers a scan of the rest of the
//! input for a lexical error, which then wins.

use crate::ast::{Expr, ValueSet};
use crate::error::{MAX_NESTING, ParseError, ParseErrorKind};
use crate::interned::{Atom, lock_table};
use crate::lexer::{Lexer, Tok, Token};

/// Parses a whole selector; empty or blank input is `all()`.
pub(crate) fn parse(input: &[u8]) -> Result<Expr, ParseError> {
    let mut lexer = Lexer::new(input);
    let first = lexer.next_token()?;
    let mut parser = Parser {
        lexer,
        peeked: first,
        depth: 0,
    };
    if parser.peeked.tok == Tok::Eof {
        return Ok(Expr::All);
    }
    let expr = parser.or_expr()?;
    match parser.peeked {
        Token { tok: Tok::Eof, .. } => Ok(expr),
        Token { tok, offset } => Err(parser.fail(
            offset,
            ParseErrorKind::UnexpectedContentAtEnd {
                found: tok.describe(),
            },
        )),
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Token<'a>,
    /// Open parentheses around the current position.
    depth: usize,
}

impl<'a> Parser<'a> {
    /// Consumes the peeked token.
    fn advance(&mut self) -> Result<Token<'a>, ParseError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.peeked, next))
    }

    /// A syntax error, unless a lexical error follows (see the module docs).
    fn fail(&mut self, offset: usize, kind: ParseErrorKind) -> ParseError {
        self.lexer
            .first_error()
            .unwrap_or(ParseError { offset, kind })
    }

    fn or_expr(&mut self) -> Result<Expr, ParseError> {
        let first = self.and_expr()?;
        if self.peeked.tok != Tok::Or {
            return Ok(first);
        }
        let mut operands = vec![first];
        while self.peeked.tok == Tok::Or {
            self.advance()?;
            operands.push(self.and_expr()?);
        }
        Ok(Expr::Or(operands.into_boxed_slice()))
    }

    fn and_expr(&mut self) -> Result<Expr, ParseError> {
        let first = self.operation()?;
        if self.peeked.tok != Tok::And {
            return Ok(first);
        }
        let mut operands = vec![first];
        while self.peeked.tok == Tok::And {
            self.advance()?;
            operands.push(self.operation()?);
        }
        Ok(Expr::And(operands.into_boxed_slice()))
    }

    fn operation(&mut self) -> Result<Expr, ParseError> {
        let mut negated = false;
        while self.peeked.tok == Tok::Not {
            negated = !negated;
            self.advance()?;
        }
        let Token { tok, offset } = self.advance()?;
        let expr = match tok {
            Tok::Has(label) => Expr::Has(Atom::new(label)),
            Tok::All => Expr::All,
            Tok::Global => Expr::Global,
            Tok::Label(label) => self.comparison(label)?,
            Tok::LParen => {
                if self.depth >= MAX_NESTING {
                    return Err(self.fail(offset, ParseErrorKind::NestedTooDeeply));
                }
                self.depth += 1;
                let inner = self.or_expr()?;
                self.depth -= 1;
                if self.peeked.tok != Tok::RParen {
                    let at = self.peeked.offset;
                    return Err(self.fail(at, ParseErrorKind::ExpectedCloseParen));
                }
                self.advance()?;
                inner
            }
            other => {
                return Err(self.fail(
                    offset,
                    ParseErrorKind::UnexpectedToken {
                        found: other.describe(),
                    },
                ));
            }
        };
        Ok(if negated {
            Expr::Not(Box::new(expr))
        } else {
            expr
        })
    }

    /// After a label: an operator and its string or set literal.
    fn comparison(&mut self, label: &'a [u8]) -> Result<Expr, ParseError> {
        let Token { tok: op, offset } = self.advance()?;
        type Build = fn(Atom, Atom) -> Expr;
        let build: Build = match op {
            Tok::Eq => Expr::Eq,
            Tok::Ne => Expr::Ne,
            Tok::Contains => Expr::Contains,
            Tok::StartsWith => Expr::StartsWith,
            Tok::EndsWith => Expr::EndsWith,
            Tok::In | Tok::NotIn => return self.set_comparison(label, op == Tok::In),
            Tok::Eof => return Err(self.fail(offset, ParseErrorKind::UnexpectedEnd)),
            other => {
                return Err(self.fail(
                    offset,
                    ParseErrorKind::ExpectedComparison {
                        found: other.describe(),
                    },
                ));
            }
        };
        match self.advance()? {
            Token {
                tok: Tok::Str(value),
                ..
            } => {
                let mut table = lock_table();
                let (key, value) = (table.intern(label), table.intern(value));
                drop(table);
                Ok(build(key, value))
            }
            Token { offset, .. } => Err(self.fail(offset, ParseErrorKind::ExpectedString)),
        }
    }

    fn set_comparison(&mut self, label: &'a [u8], is_in: bool) -> Result<Expr, ParseError> {
        let open = self.advance()?;
        if open.tok != Tok::LBrace {
            return Err(self.fail(open.offset, ParseErrorKind::ExpectedSetLiteral));
        }
        let mut values = Vec::new();
        while let Tok::Str(value) = self.peeked.tok {
            values.push(value);
            self.advance()?;
            if self.peeked.tok != Tok::Comma {
                break;
            }
            self.advance()?;
        }
        if self.peeked.tok != Tok::RBrace {
            let at = self.peeked.offset;
            return Err(self.fail(at, ParseErrorKind::ExpectedCloseBrace));
        }
        self.advance()?;
        let key = Atom::new(label);
        let set = ValueSet::new(values);
        Ok(if is_in {
            Expr::In(key, set)
        } else {
            Expr::NotIn(key, set)
        })
    }
}
