//! The shape of the generated field table (`fields.rs`) and lookups in it.

use super::fields::MESSAGES;

/// A field's protobuf type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    /// `string`.
    Str,
    /// `bytes` (base64 in JSON).
    Bytes,
    /// `bool`.
    Bool,
    /// `int32`.
    I32,
    /// `int64`.
    I64,
    /// A message, by full name (`api.core.v1.ServiceSpec`).
    M(&'static str),
}

/// How many values a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Card {
    /// One (`optional`).
    One,
    /// A list (`repeated`).
    Many,
    /// `map<string, T>`: entries with the key at 1 and the value at 2.
    Map,
}

/// One field of a message.
#[derive(Debug)]
pub(super) struct Field {
    /// Field number.
    pub num: u32,
    /// Name in JSON.
    pub json: &'static str,
    /// Type.
    pub ty: Ty,
    /// Cardinality.
    pub card: Card,
}

/// Shorthand the generated table uses.
#[allow(non_snake_case)]
pub(super) const fn F(num: u32, json: &'static str, ty: Ty, card: Card) -> Field {
    Field {
        num,
        json,
        ty,
        card,
    }
}

/// The fields of a message, by full name.
pub(super) fn message(name: &str) -> Option<&'static [Field]> {
    MESSAGES
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| MESSAGES[i].1)
}

/// The message of an object of `apiVersion` and `kind`: the group's package
/// (`rbac.authorization.k8s.io/v1` is `api.rbac.v1`), else meta/v1's (for
/// `DeleteOptions` and the like sent as `v1`).
pub(super) fn message_of_kind(api_version: &str, kind: &str) -> Option<&'static str> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let short = match group {
        "" => "core",
        g => g.split('.').next().unwrap_or(g),
    };
    let candidates = [
        format!("api.{short}.{version}."),
        "apimachinery.pkg.apis.meta.v1.".to_owned(),
    ];
    candidates.iter().find_map(|package| {
        MESSAGES
            .iter()
            .find(|(n, _)| {
                n.strip_prefix(package.as_str())
                    .is_some_and(|k| k.eq_ignore_ascii_case(kind))
            })
            .map(|(n, _)| *n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_closed() {
        assert!(MESSAGES.windows(2).all(|w| w[0].0 < w[1].0));
        for (name, fields) in MESSAGES {
            for f in *fields {
                if let Ty::M(m) = f.ty {
                    assert!(message(m).is_some(), "{name}.{} names {m}", f.json);
                }
            }
        }
    }

    #[test]
    fn kinds_find_their_messages() {
        assert_eq!(message_of_kind("v1", "Secret"), Some("api.core.v1.Secret"));
        assert_eq!(
            message_of_kind("rbac.authorization.k8s.io/v1", "RoleBinding"),
            Some("api.rbac.v1.RoleBinding")
        );
        assert_eq!(
            message_of_kind("authentication.k8s.io/v1", "TokenRequest"),
            Some("api.authentication.v1.TokenRequest")
        );
        assert_eq!(
            message_of_kind("meta.k8s.io/v1", "DeleteOptions"),
            Some("apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        let spec = message("api.core.v1.ServiceSpec").unwrap();
        assert!(spec.iter().any(|f| f.json == "clusterIPs" && f.num == 18));
    }
}
