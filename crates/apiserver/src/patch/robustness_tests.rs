//! Random inputs never panic any patch type: seeded, so failures reproduce.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use super::{
    Manager, MergeInfo, PatchType, apply_patch, server_side_apply, testdata, track_update,
};

const KEYS: &[&str] = &[
    "metadata",
    "spec",
    "labels",
    "finalizers",
    "containers",
    "name",
    "image",
    "ports",
    "containerPort",
    "protocol",
    "env",
    "value",
    "template",
    "volumes",
    "$patch",
    "$retainKeys",
    "$setElementOrder/containers",
    "$deleteFromPrimitiveList/finalizers",
    "$setElementOrder/finalizers",
    "replicas",
    "selector",
    "strategy",
    "rollingUpdate",
    "type",
];

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    let choice = if depth == 0 {
        rng.random_range(0..4)
    } else {
        rng.random_range(0..7)
    };
    match choice {
        0 => Value::Null,
        1 => json!(rng.random_range(0..4)),
        2 => json!(["replace", "delete", "merge", "a", "b"][rng.random_range(0..5)]),
        3 => json!(rng.random_bool(0.5)),
        4 | 5 => {
            let mut map = Map::new();
            for _ in 0..rng.random_range(0..4) {
                map.insert(
                    KEYS[rng.random_range(0..KEYS.len())].to_owned(),
                    random_value(rng, depth - 1),
                );
            }
            Value::Object(map)
        }
        _ => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
    }
}

#[test]
fn random_patches_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let schema = testdata::deployment();
    let info: &dyn MergeInfo = &schema;
    let manager = Manager {
        name: "fuzz",
        api_version: "apps/v1",
        subresource: None,
        now: "2026-01-01T00:00:00Z",
        ignored_fields: &[],
    };
    let mut outcomes = [0usize; 2];
    for _ in 0..3000 {
        let live = match random_value(&mut rng, 4) {
            Value::Object(mut map) => {
                map.insert("apiVersion".into(), json!("apps/v1"));
                Value::Object(map)
            }
            _ => json!({"apiVersion": "apps/v1"}),
        };
        let patch = random_value(&mut rng, 4);
        let body = patch.to_string();
        for kind in [PatchType::Json, PatchType::Merge, PatchType::Strategic] {
            outcomes[usize::from(apply_patch(kind, &live, body.as_bytes(), Some(info)).is_ok())] +=
                1;
        }
        let mut config = patch;
        if let Some(map) = config.as_object_mut() {
            map.insert("apiVersion".into(), json!("apps/v1"));
            map.remove("kind");
        }
        let applied = server_side_apply(
            Some(&live),
            config.to_string().as_bytes(),
            &manager,
            false,
            Some(info),
        );
        outcomes[usize::from(applied.is_ok())] += 1;
        if let Ok(object) = applied {
            track_update(Some(&object), &live, &manager, Some(info));
        }
    }
    // Both outcomes occur, so the generator reaches the merge code and the error paths.
    assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
}
