//! DNS names as the records need them: single labels (namespace, region,
//! zone) and whole domain names (the suffix, load-balancer hostnames).
//!
//! Both are checked once at the edge and kept in lower case, so two spellings
//! of one name compare equal and every record name built from them is valid.

use std::fmt;
use std::sync::Arc;

/// The longest label DNS allows (RFC 1035).
const MAX_LABEL_LEN: usize = 63;
/// The longest domain name in text form, without the trailing dot (RFC 1035's
/// 255 octets on the wire).
const MAX_NAME_LEN: usize = 253;

/// Why a string is not a usable DNS label or name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A label (or a name's label) is empty.
    #[error("{what} {name:?} has an empty label")]
    EmptyLabel {
        /// What the string was meant to be.
        what: &'static str,
        /// The rejected string.
        name: String,
    },
    /// A label is longer than 63 characters.
    #[error("{what} {name:?} has a label longer than {MAX_LABEL_LEN} characters")]
    LabelTooLong {
        /// What the string was meant to be.
        what: &'static str,
        /// The rejected string.
        name: String,
    },
    /// The whole name is longer than 253 characters.
    #[error("{what} {name:?} is longer than {MAX_NAME_LEN} characters")]
    NameTooLong {
        /// What the string was meant to be.
        what: &'static str,
        /// The rejected string.
        name: String,
    },
    /// A character other than a letter, a digit, '-' or '_', or a label that
    /// starts or ends with '-'.
    #[error(
        "{what} {name:?} is not a DNS name: letters, digits, '-' and '_', labels not starting or ending with '-'"
    )]
    Invalid {
        /// What the string was meant to be.
        what: &'static str,
        /// The rejected string.
        name: String,
    },
}

fn check_label(what: &'static str, whole: &str, label: &str) -> Result<(), NameError> {
    let err = |make: fn(&'static str, String) -> NameError| Err(make(what, whole.into()));
    if label.is_empty() {
        return err(|what, name| NameError::EmptyLabel { what, name });
    }
    if label.len() > MAX_LABEL_LEN {
        return err(|what, name| NameError::LabelTooLong { what, name });
    }
    let bytes = label.as_bytes();
    let ok_char = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    if !bytes.iter().all(ok_char) || bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
        return err(|what, name| NameError::Invalid { what, name });
    }
    Ok(())
}

/// One DNS label in lower case: a namespace, a Service or federation name, a
/// region or a zone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsLabel(Arc<str>);

impl DnsLabel {
    /// Checks that `label` is one DNS label (no dots) and lower-cases it.
    /// `what` names the field in the error ("region", "namespace", ...).
    pub fn new(what: &'static str, label: &str) -> Result<Self, NameError> {
        check_label(what, label, label)?;
        Ok(Self(label.to_ascii_lowercase().into()))
    }

    /// A label fedmesh spells itself (`svc`), known to be valid.
    pub(crate) fn literal(label: &'static str) -> Self {
        Self(label.into())
    }

    /// The label as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DnsLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DnsLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// A fully qualified domain name in lower case, kept without the trailing dot
/// (`example.com`). The root name is not allowed: nothing fedmesh writes lives there.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(Arc<str>);

impl DomainName {
    /// Checks `name` (one trailing dot allowed) and lower-cases it. `what`
    /// names the field in the error ("DNS suffix", "load-balancer hostname", ...).
    pub fn new(what: &'static str, name: &str) -> Result<Self, NameError> {
        let bare = name.strip_suffix('.').unwrap_or(name);
        if bare.len() > MAX_NAME_LEN {
            return Err(NameError::NameTooLong {
                what,
                name: name.into(),
            });
        }
        for label in bare.split('.') {
            check_label(what, name, label)?;
        }
        Ok(Self(bare.to_ascii_lowercase().into()))
    }

    /// `labels` followed by `self`, checked for length (the labels are valid already).
    pub(crate) fn prepend(&self, labels: &[&DnsLabel]) -> Result<Self, NameError> {
        let mut text = String::with_capacity(self.0.len() + 64);
        for label in labels {
            text.push_str(label.as_str());
            text.push('.');
        }
        text.push_str(&self.0);
        if text.len() > MAX_NAME_LEN {
            return Err(NameError::NameTooLong {
                what: "record name",
                name: text,
            });
        }
        Ok(Self(text.into()))
    }

    /// The name as text, without the trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The labels from left to right.
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('.')
    }

    /// Whether `self` is `ancestor` or a name below it.
    pub fn is_within(&self, ancestor: &DomainName) -> bool {
        let (me, anc) = (self.as_str(), ancestor.as_str());
        me == anc
            || (me.len() > anc.len()
                && me.ends_with(anc)
                && me.as_bytes()[me.len() - anc.len() - 1] == b'.')
    }

    /// The name one label up, or `None` for a single-label name.
    pub fn parent(&self) -> Option<DomainName> {
        self.0.split_once('.').map(|(_, rest)| Self(rest.into()))
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_names_are_checked_and_lower_cased() {
        assert_eq!(
            DnsLabel::new("zone", "US-Central1-F").unwrap().as_str(),
            "us-central1-f"
        );
        assert_eq!(
            DomainName::new("suffix", "Example.COM.").unwrap().as_str(),
            "example.com"
        );
        for bad in ["", "a.b", "-a", "a-", "a b", &"x".repeat(64)] {
            assert!(DnsLabel::new("zone", bad).is_err(), "{bad:?}");
        }
        for bad in [
            "",
            "a..b",
            ".",
            "a.-b",
            &format!("{}.com", "a.".repeat(126)),
        ] {
            assert!(DomainName::new("suffix", bad).is_err(), "{bad:?}");
        }
        let suffix = DomainName::new("suffix", "example.com").unwrap();
        let sub = DomainName::new("name", "a.example.com").unwrap();
        assert!(sub.is_within(&suffix) && suffix.is_within(&suffix));
        assert!(
            !DomainName::new("n", "aexample.com")
                .unwrap()
                .is_within(&suffix)
        );
        assert_eq!(sub.parent(), Some(suffix));
    }
}
