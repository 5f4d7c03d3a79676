//! The patch options kube-apiserver checks before patching (`ValidatePatchOptions`),
//! and the field manager a write is recorded under.

use crate::schema::{FieldError, FieldPath};

use super::PatchType;

/// The longest field manager name Kubernetes accepts.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// Checks a patch request's `fieldManager` and `force` query parameters. A non-empty
/// result is a 422 `Invalid` for kind `PatchOptions.meta.k8s.io` and name `""`
/// (`crate::schema::invalid_message`).
pub fn validate_patch_options(
    kind: PatchType,
    field_manager: Option<&str>,
    force: Option<bool>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let field_manager = field_manager.unwrap_or_default();
    if kind == PatchType::Apply {
        if field_manager.is_empty() {
            errors.push(FieldError::required(
                FieldPath::new("fieldManager"),
                "is required for apply patch",
            ));
        }
    } else if force.is_some() {
        errors.push(FieldError::forbidden(
            FieldPath::new("force"),
            "may not be specified for non-apply patch",
        ));
    }
    errors.extend(validate_field_manager(field_manager));
    errors
}

/// Checks a `fieldManager` of any write: at most 128 bytes, printable characters only.
pub fn validate_field_manager(field_manager: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if field_manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errors.push(FieldError::too_long(
            FieldPath::new("fieldManager"),
            FIELD_MANAGER_MAX_LENGTH,
        ));
    }
    for (i, c) in field_manager.char_indices() {
        if c.is_control() {
            errors.push(FieldError::invalid(
                FieldPath::new("fieldManager"),
                field_manager,
                format!("invalid characters at {i}"),
            ));
        }
    }
    errors
}

/// The manager a non-apply write is recorded under: the `fieldManager` parameter, else
/// the user agent's program name (the part before the first `/`, printable characters
/// only, at most 128 bytes), as kube-apiserver derives it (`kubectl/v1.33.0 (linux)` is
/// `kubectl`).
pub fn manager_or_user_agent(field_manager: Option<&str>, user_agent: &str) -> String {
    if let Some(manager) = field_manager.filter(|m| !m.is_empty()) {
        return manager.to_owned();
    }
    let program = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in program.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::invalid_message;

    #[test]
    fn patch_option_errors() {
        let cases: Vec<(PatchType, Option<&str>, Option<bool>, &str)> = vec![
            (
                PatchType::Apply,
                None,
                None,
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ),
            (
                PatchType::Strategic,
                Some("m"),
                Some(true),
                "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
            ),
        ];
        for (kind, manager, force, message) in cases {
            let errors = validate_patch_options(kind, manager, force);
            assert_eq!(
                invalid_message("PatchOptions.meta.k8s.io", "", &errors),
                message
            );
        }
        assert!(validate_patch_options(PatchType::Apply, Some("kubectl"), Some(true)).is_empty());
        assert!(validate_patch_options(PatchType::Merge, None, None).is_empty());
        let long = "m".repeat(129);
        assert_eq!(
            validate_patch_options(PatchType::Json, Some(&long), None).len(),
            1
        );
        assert_eq!(validate_field_manager("bad\u{7}name").len(), 1);
    }

    #[test]
    fn managers_from_user_agents() {
        let cases = vec![
            (Some("ci"), "kubectl/v1.33.0", "ci"),
            (
                None,
                "kubectl/v1.33.0 (linux/amd64) kubernetes/abc",
                "kubectl",
            ),
            (Some(""), "kube-rs/1.0", "kube-rs"),
            (None, "", ""),
            (None, "odd\u{1}agent/1", "oddagent"),
        ];
        for (field_manager, agent, want) in cases {
            assert_eq!(
                manager_or_user_agent(field_manager, agent),
                want,
                "{agent:?}"
            );
        }
        assert_eq!(
            manager_or_user_agent(None, &"x".repeat(300)).len(),
            FIELD_MANAGER_MAX_LENGTH
        );
    }
}
