//! Calico's canonical `String()` and `UniqueID()`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha224};

use crate::ast::Expr;
use crate::interned::Atom;

/// Appends the canonical form of `expr` to `out`.
///
/// Comparisons use the long operator forms; `And`/`Or` are always wrapped in
/// parentheses and `Not` never is, which is why `!(!x)` prints as `!!x`.
pub(crate) fn write_canonical(expr: &Expr, out: &mut Vec<u8>) {
    match expr {
        Expr::All => out.extend_from_slice(b"all()"),
        Expr::Global => out.extend_from_slice(b"global()"),
        Expr::Has(key) => {
            out.extend_from_slice(b"has(");
            out.extend_from_slice(key.as_bytes());
            out.push(b')');
        }
        Expr::Eq(key, value) => comparison(out, key, b" == ", value),
        Expr::Ne(key, value) => comparison(out, key, b" != ", value),
        Expr::Contains(key, value) => comparison(out, key, b" contains ", value),
        Expr::StartsWith(key, value) => comparison(out, key, b" starts with ", value),
        Expr::EndsWith(key, value) => comparison(out, key, b" ends with ", value),
        Expr::In(key, set) | Expr::NotIn(key, set) => {
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(if matches!(expr, Expr::In(..)) {
                b" in {"
            } else {
                b" not in {"
            });
            for (i, value) in set.values().iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                quoted(out, value);
            }
            out.push(b'}');
        }
        Expr::Not(inner) => {
            out.push(b'!');
            write_canonical(inner, out);
        }
        Expr::And(operands) => chain(out, operands, b" && "),
        Expr::Or(operands) => chain(out, operands, b" || "),
    }
}

fn comparison(out: &mut Vec<u8>, key: &Atom, op: &[u8], value: &Atom) {
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(op);
    quoted(out, value);
}

/// Double quotes unless the value contains one (it then cannot contain a
/// single quote, since there are no escapes).
fn quoted(out: &mut Vec<u8>, value: &Atom) {
    let bytes = value.as_bytes();
    let quote = if bytes.contains(&b'"') { b'\'' } else { b'"' };
    out.reserve(bytes.len() + 2);
    out.push(quote);
    out.extend_from_slice(bytes);
    out.push(quote);
}

fn chain(out: &mut Vec<u8>, operands: &[Expr], separator: &[u8]) {
    out.push(b'(');
    for (i, operand) in operands.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(separator);
        }
        write_canonical(operand, out);
    }
    out.push(b')');
}

/// `"s:" + base64url_nopad(SHA-224("s:" + canonical))`.
pub(crate) fn unique_id(canonical: &[u8]) -> String {
    let mut hasher = Sha224::new();
    hasher.update(b"s:");
    hasher.update(canonical);
    let digest = hasher.finalize();
    let mut id = String::with_capacity(2 + 38);
    id.push_str("s:");
    URL_SAFE_NO_PAD.encode_string(digest, &mut id);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_id_of_all_matches_calico() {
        assert_eq!(
            unique_id(b"all()"),
            "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"
        );
    }
}
