//! Hostile-input tests across the module: mutated tokens never authenticate, and malformed
//! certificates, headers and objects are errors, never panics.

use k8s_openapi::api::authentication::v1::TokenRequestSpec;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::json;

use super::authn::{Authenticator, BearerToken};
use super::certs::TlsAssets;
use super::client_cert::user_from_certificate;
use super::rbac::RbacIndex;
use super::sa_token::tests::{FakeObjects, bot};
use super::sa_token::{ObjectKind, ServiceAccountTokens};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap()).unwrap()
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

#[test]
fn every_single_character_change_to_a_token_is_rejected() {
    let tokens = ServiceAccountTokens::in_memory().unwrap();
    let objects =
        FakeObjects::default().with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-1");
    let now = jiff::Timestamp::now();
    let token = tokens
        .mint_token_request(&bot(), &TokenRequestSpec::default(), &objects, now)
        .unwrap()
        .status
        .token;
    assert!(tokens.verify(&token, &objects, now).is_ok());
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for position in 0..token.len() {
        let mut mutated = token.clone().into_bytes();
        let original = mutated[position];
        let mut replacement = alphabet[rng.below(alphabet.len())];
        if replacement == original {
            replacement = if original == b'A' { b'B' } else { b'A' };
        }
        mutated[position] = replacement;
        let mutated = String::from_utf8(mutated).unwrap();
        assert!(
            tokens.verify(&mutated, &objects, now).is_err(),
            "mutation at {position} verified"
        );
    }
    for cut in 0..token.len() {
        assert!(tokens.verify(&token[..cut], &objects, now).is_err());
    }
}

#[test]
fn random_bearer_headers_never_panic() {
    let authn = Authenticator::new(
        &BearerToken::new("admin"),
        ServiceAccountTokens::in_memory().unwrap(),
    );
    let objects = FakeObjects::default();
    let now = jiff::Timestamp::now();
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let len = rng.below(120);
        let raw = rng.bytes(len);
        let text = String::from_utf8_lossy(&raw);
        let dotted = format!("Bearer {text}.{text}.{text}");
        for header in [text.as_ref(), dotted.as_str()] {
            if let Ok(user) = authn.authenticate(Some(header), &objects, now) {
                // Only the anonymous fallback can succeed with random input.
                assert_eq!(user.username, "system:anonymous", "{header:?}");
            }
        }
    }
}

#[test]
fn corrupted_certificates_never_panic() {
    let assets = TlsAssets::in_memory(&[]).unwrap();
    let cert = assets
        .issue_client_certificate("jane", Some("devs"))
        .unwrap();
    let der = CertificateDer::from_pem_slice(cert.cert_pem.as_bytes())
        .unwrap()
        .to_vec();
    assert!(user_from_certificate(&[CertificateDer::from(der.clone())]).is_some());
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let mut mutated = der.clone();
        match rng.below(3) {
            0 => mutated.truncate(rng.below(der.len())),
            1 => {
                let i = rng.below(mutated.len());
                mutated[i] ^= 1 << rng.below(8);
            }
            _ => {
                let len = rng.below(64);
                mutated = rng.bytes(len);
            }
        }
        // Any answer is acceptable; the point is that there is one.
        let _ = user_from_certificate(&[CertificateDer::from(mutated)]);
    }
}

#[test]
fn malformed_rbac_objects_are_errors() {
    let mut index = RbacIndex::with_bootstrap_policy();
    let bad = [
        json!(null),
        json!([]),
        json!({"kind": "Role"}),
        json!({"kind": "ClusterRole", "metadata": {"name": ""}}),
        json!({"kind": "ClusterRole", "metadata": {"name": "x"}, "rules": "all"}),
        json!({"kind": "RoleBinding", "metadata": {"name": "x", "namespace": "n"}, "roleRef": 3}),
    ];
    for object in bad {
        assert!(index.apply_json(&object).is_err(), "{object}");
    }
    // Unknown role kinds and subjects are tolerated and grant nothing.
    index
        .apply_json(&json!({
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "odd"},
            "roleRef": {"apiGroup": "x", "kind": "Weird", "name": "cluster-admin"},
            "subjects": [{"kind": "Robot", "name": "r2"}, {"kind": "User", "name": "odd"}],
        }))
        .unwrap();
    let odd = super::user::UserInfo::authenticated("odd", &[]);
    let attrs = super::rbac::ResourceAttributes::new("get", "", "pods").into();
    let decision = index.authorize(&odd, &attrs);
    assert!(!decision.is_allowed());
    assert_eq!(
        decision.reason(),
        "RBAC: unsupported role reference kind: \"Weird\""
    );
}
