//! The `--labels k=v,k2=v2` argument.

use std::collections::BTreeMap;
use std::str::FromStr;

/// A label set given on the command line as comma-separated `key=value` pairs.
///
/// The value runs from the first `=` to the next comma, so a value may contain `=`
/// but not `,`. Empty items are skipped, which makes `--labels ''` the empty set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelList(BTreeMap<String, String>);

impl LabelList {
    /// The labels, sorted by key.
    pub(crate) fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

/// Why a `--labels` argument could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum LabelListError {
    /// An item has no `=` between key and value.
    #[error("label {0:?} has no '=': expected key=value")]
    MissingEquals(String),
    /// An item starts with `=`; a selector can never refer to an empty key.
    #[error("label {0:?} has an empty key")]
    EmptyKey(String),
    /// The same key appears twice, so the intended value is ambiguous.
    #[error("label {0:?} is given more than once")]
    DuplicateKey(String),
}

impl FromStr for LabelList {
    type Err = LabelListError;

    fn from_str(arg: &str) -> Result<Self, Self::Err> {
        let mut labels = BTreeMap::new();
        for item in arg.split(',').filter(|item| !item.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| LabelListError::MissingEquals(item.to_owned()))?;
            if key.is_empty() {
                return Err(LabelListError::EmptyKey(item.to_owned()));
            }
            if labels.insert(key.to_owned(), value.to_owned()).is_some() {
                return Err(LabelListError::DuplicateKey(key.to_owned()));
            }
        }
        Ok(LabelList(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::{LabelList, LabelListError};

    fn pairs(list: &LabelList) -> Vec<(&str, &str)> {
        list.as_map()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn reads_pairs_and_keeps_equals_signs_in_values() {
        let list: LabelList = "tier=fe,app=web,expr=a=b,empty=".parse().unwrap();
        assert_eq!(
            pairs(&list),
            [
                ("app", "web"),
                ("empty", ""),
                ("expr", "a=b"),
                ("tier", "fe")
            ]
        );
    }

    #[test]
    fn empty_argument_and_empty_items_mean_no_labels() {
        assert!("".parse::<LabelList>().unwrap().as_map().is_empty());
        assert_eq!(pairs(&",a=1,,".parse().unwrap()), [("a", "1")]);
    }

    #[test]
    fn rejects_malformed_items() {
        assert_eq!(
            "app=web,tier".parse::<LabelList>(),
            Err(LabelListError::MissingEquals("tier".to_owned()))
        );
        assert_eq!(
            "=web".parse::<LabelList>(),
            Err(LabelListError::EmptyKey("=web".to_owned()))
        );
        assert_eq!(
            "a=1,a=2".parse::<LabelList>(),
            Err(LabelListError::DuplicateKey("a".to_owned()))
        );
    }
}
