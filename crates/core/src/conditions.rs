//! Status conditions on objects other writers share (a federated Service's
//! `status.conditions`): one condition is set by its type, the others are
//! kept as they are, as `meta.SetStatusCondition` does in Go.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// `conditions` with `update` in place of the condition of its type (added
/// when there is none), or `None` when that condition already says the same
/// (status, reason, message, observed generation): nothing to write.
///
/// Conditions of other types are kept in their order. When the status does
/// not change, the `lastTransitionTime` already there is kept, so it says
/// when the status last changed rather than when it was last written.
pub fn set_condition(conditions: &[Condition], update: Condition) -> Option<Vec<Condition>> {
    let Some(at) = conditions.iter().position(|c| c.type_ == update.type_) else {
        let mut all = conditions.to_vec();
        all.push(update);
        return Some(all);
    };
    let current = &conditions[at];
    if current.status == update.status
        && current.reason == update.reason
        && current.message == update.message
        && current.observed_generation == update.observed_generation
    {
        return None;
    }
    let mut all = conditions.to_vec();
    let last_transition_time = if current.status == update.status {
        current.last_transition_time.clone()
    } else {
        update.last_transition_time
    };
    all[at] = Condition {
        last_transition_time,
        ..update
    };
    Some(all)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn condition(type_: &str, status: &str, message: &str, at: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: format!("Because{status}"),
            message: message.into(),
            last_transition_time: Time(Timestamp::from_second(at).unwrap()),
            observed_generation: None,
        }
    }

    #[test]
    fn other_conditions_are_kept_in_their_order() {
        let others = [
            condition("Ready", "True", "someone else's", 10),
            condition("Degraded", "False", "", 20),
        ];
        let update = condition("DNSRecordsWritten", "False", "etcd is down", 30);
        let all = set_condition(&others, update.clone()).expect("added");
        assert_eq!(all, [others[0].clone(), others[1].clone(), update]);
    }

    #[test]
    fn a_changed_status_replaces_the_condition_and_its_transition_time() {
        let existing = [
            condition("Ready", "True", "someone else's", 10),
            condition("DNSRecordsWritten", "False", "etcd is down", 20),
        ];
        let update = condition("DNSRecordsWritten", "True", "written", 30);
        let all = set_condition(&existing, update.clone()).expect("changed");
        assert_eq!(all, [existing[0].clone(), update]);
    }

    #[test]
    fn the_same_status_keeps_its_transition_time() {
        let existing = [
            condition("DNSRecordsWritten", "False", "etcd is down", 20),
            condition("Ready", "True", "someone else's", 10),
        ];
        let update = condition("DNSRecordsWritten", "False", "etcd refused", 30);
        let all = set_condition(&existing, update).expect("the message changed");
        assert_eq!(
            all,
            [
                condition("DNSRecordsWritten", "False", "etcd refused", 20),
                existing[1].clone()
            ]
        );
        // Saying the same again writes nothing.
        let again = condition("DNSRecordsWritten", "False", "etcd refused", 40);
        assert_eq!(set_condition(&all, again), None);
    }
}
