//! The Calico label-selector language, exactly as Calico implements it: the
//! same accepted inputs, match results, canonical strings and UniqueIDs
//! (Calico's `libcalico-go/lib/selector` is the reference).
//!
//! - [`Selector::parse`] / [`Selector::parse_bytes`]: Calico's byte-oriented,
//!   context-sensitive lexer and its recursive-descent parser.
//! - [`Selector::canonical`] and [`Selector::unique_id`]: Calico's `String()`
//!   and `UniqueID()`, computed once at parse time.
//! - [`Selector::matches`] on any [`Labels`] source, and
//!   [`Selector::matches_interned`] on [`InternedLabels`]: no allocation, no
//!   lock, pointer comparisons for `==` and `in`.
//! - [`Selector::label_restrictions`]: what any match requires, for indexes.
//!
//! ```
//! use fedmesh_selector::{InternedLabels, Selector};
//! use std::collections::HashMap;
//!
//! let sel = Selector::parse("app == 'web' && tier in {'b', 'a', 'b'} && !has(legacy)")?;
//! assert_eq!(sel.canonical(), r#"(app == "web" && tier in {"a", "b"} && !has(legacy))"#);
//! assert!(sel.unique_id().starts_with("s:"));
//!
//! let labels = HashMap::from([("app".to_string(), "web".to_string()), ("tier".into(), "a".into())]);
//! assert!(sel.matches(&labels));
//!
//! // The fast path: intern the labels once, evaluate many selectors.
//! let interned = InternedLabels::new(&labels);
//! assert!(sel.matches_interned(&interned));
//!
//! // Errors say what and where.
//! let err = Selector::parse("a == 'x' && b").unwrap_err();
//! assert_eq!(err.to_string(), "unexpected end of selector after label at byte 13");
//! # Ok::<(), fedmesh_selector::ParseError>(())
//! ```
//!
//! The only intended difference from Calico: parentheses may nest at most
//! [`MAX_NESTING`] deep (Calico has no limit and recurses without bound).

mod ast;
mod canonical;
mod error;
mod interned;
mod labels;
mod lexer;
mod parser;
mod restrictions;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

pub use error::{Keyword, MAX_LABEL_LEN, MAX_NESTING, ParseError, ParseErrorKind};
pub use interned::{InternedLabels, InternedLabelsBuilder};
pub use labels::Labels;
pub use restrictions::{LabelRestriction, LabelRestrictions};

use ast::{Expr, PlainLabels};

/// A parsed Calico selector.
///
/// Cheap to clone (an `Arc` inside), `Send + Sync`. Equality and hashing
/// compare the canonical string; `Display` prints it; `FromStr` parses.
#[derive(Clone)]
pub struct Selector(Arc<Inner>);

struct Inner {
    expr: Expr,
    /// The canonical string; lossy only when `raw_canonical` is set.
    canonical: Box<str>,
    /// The exact canonical bytes, kept only when they are not valid UTF-8.
    raw_canonical: Option<Box<[u8]>>,
    unique_id: Box<str>,
}

static ALL: LazyLock<Selector> = LazyLock::new(|| Selector::from_expr(Expr::All));

impl Selector {
    /// Parses a selector. Empty or blank (spaces and tabs) input is `all()`.
    pub fn parse(input: &str) -> Result<Selector, ParseError> {
        Selector::parse_bytes(input.as_bytes())
    }

    /// Parses a selector from bytes: like Calico, which lexes bytes, string
    /// literals may hold any bytes, even invalid UTF-8.
    pub fn parse_bytes(input: &[u8]) -> Result<Selector, ParseError> {
        parser::parse(input).map(Selector::from_expr)
    }

    /// The selector `all()`, which matches every label set.
    pub fn all() -> Selector {
        ALL.clone()
    }

    fn from_expr(expr: Expr) -> Selector {
        let mut bytes = Vec::with_capacity(64);
        canonical::write_canonical(&expr, &mut bytes);
        let unique_id = canonical::unique_id(&bytes).into_boxed_str();
        let (canonical, raw_canonical) = match String::from_utf8(bytes) {
            Ok(text) => (text.into_boxed_str(), None),
            Err(err) => {
                let bytes = err.into_bytes();
                let lossy = String::from_utf8_lossy(&bytes)
                    .into_owned()
                    .into_boxed_str();
                (lossy, Some(bytes.into_boxed_slice()))
            }
        };
        Selector(Arc::new(Inner {
            expr,
            canonical,
            raw_canonical,
            unique_id,
        }))
    }

    /// Calico's `String()`, byte for byte. Exact for every selector parsed
    /// from a `&str`; for one parsed from invalid UTF-8 it is a lossy
    /// rendering and [`canonical_bytes`](Self::canonical_bytes) is exact.
    pub fn canonical(&self) -> &str {
        &self.0.canonical
    }

    /// Calico's `String()` as bytes, exact for every input.
    pub fn canonical_bytes(&self) -> &[u8] {
        match &self.0.raw_canonical {
            Some(raw) => raw,
            None => self.0.canonical.as_bytes(),
        }
    }

    /// Calico's `UniqueID()`: `"s:" + base64url_nopad(SHA-224("s:" + canonical))`.
    pub fn unique_id(&self) -> &str {
        &self.0.unique_id
    }

    /// Evaluates the selector against any label source.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.0.expr.eval(&PlainLabels(labels))
    }

    /// Evaluates the selector against interned labels: no allocation, no lock.
    #[inline]
    pub fn matches_interned(&self, labels: &InternedLabels) -> bool {
        self.0.expr.eval(labels)
    }

    /// Which labels and values any match requires (Calico's
    /// `LabelRestrictions()`).
    ///
    /// Computed on each call, as in Calico: most selectors never need it, and
    /// caching it inside the selector would make `Selector` interior-mutable
    /// (clippy's `mutable_key_type` would then object to `HashSet<Selector>`).
    pub fn label_restrictions(&self) -> LabelRestrictions {
        LabelRestrictions::of(&self.0.expr)
    }
}

impl Default for Selector {
    /// `all()`.
    fn default() -> Selector {
        Selector::all()
    }
}

impl PartialEq for Selector {
    fn eq(&self, other: &Selector) -> bool {
        self.canonical_bytes() == other.canonical_bytes()
    }
}

impl Eq for Selector {}

impl Hash for Selector {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.canonical_bytes().hash(state);
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.canonical())
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Selector").field(&self.canonical()).finish()
    }
}

impl FromStr for Selector {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Selector, ParseError> {
        Selector::parse(input)
    }
}

impl TryFrom<&str> for Selector {
    type Error = ParseError;
    fn try_from(input: &str) -> Result<Selector, ParseError> {
        Selector::parse(input)
    }
}
