//! Client certificate authentication: a certificate signed by the cluster CA authenticates as
//! its subject's common name, with its organizations as groups (kube-apiserver's x509 rule).
//!
//! rustls has verified the chain before this runs; here only the subject is read, with a
//! small DER reader that rejects anything unexpected instead of panicking.

use rustls::pki_types::CertificateDer;

use super::user::{ALL_AUTHENTICATED, UserInfo};

const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_OID: u8 = 0x06;
const TAG_VERSION: u8 = 0xa0;
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];

/// Splits one DER element off `input`: its tag, its content and what follows.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        // Indefinite lengths are not DER; more than 4 length bytes cannot be a certificate.
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(count);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, content, rest) = element(input)?;
    (found == tag).then_some((content, rest))
}

/// The subject's attributes as (OID bytes, string value) pairs, in order.
fn subject_attributes(der: &[u8]) -> Option<Vec<(Vec<u8>, String)>> {
    let (certificate, _) = expect(der, TAG_SEQUENCE)?;
    let (tbs, _) = expect(certificate, TAG_SEQUENCE)?;
    let mut rest = tbs;
    if let Some((TAG_VERSION, _, after)) = element(rest) {
        rest = after;
    }
    // serial, signature algorithm, issuer, validity, then the subject.
    for _ in 0..4 {
        let (_, _, after) = element(rest)?;
        rest = after;
    }
    let (mut rdns, _) = expect(rest, TAG_SEQUENCE)?;
    let mut attributes = Vec::new();
    while !rdns.is_empty() {
        let (mut set, after) = expect(rdns, TAG_SET)?;
        rdns = after;
        while !set.is_empty() {
            let (pair, after) = expect(set, TAG_SEQUENCE)?;
            set = after;
            let (oid, value) = expect(pair, TAG_OID)?;
            let (value_tag, value, _) = element(value)?;
            // UTF8String, PrintableString and IA5String are what certificates use for names.
            if matches!(value_tag, 0x0c | 0x13 | 0x16)
                && let Ok(text) = std::str::from_utf8(value)
            {
                attributes.push((oid.to_vec(), text.to_owned()));
            }
        }
    }
    Some(attributes)
}

/// The user a verified client certificate chain (leaf first) authenticates as; `None` when
/// there is no certificate or its subject has no common name.
pub fn user_from_certificate(chain: &[CertificateDer<'_>]) -> Option<UserInfo> {
    let leaf = chain.first()?;
    let attributes = subject_attributes(leaf.as_ref())?;
    let username = attributes
        .iter()
        .find(|(oid, _)| oid == OID_COMMON_NAME)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())?;
    let mut groups: Vec<String> = attributes
        .into_iter()
        .filter(|(oid, _)| oid == OID_ORGANIZATION)
        .map(|(_, v)| v)
        .collect();
    if !groups.iter().any(|g| g == ALL_AUTHENTICATED) {
        groups.push(ALL_AUTHENTICATED.to_owned());
    }
    Some(UserInfo {
        username,
        groups,
        ..UserInfo::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::certs::TlsAssets;
    use crate::auth::user::SYSTEM_MASTERS;

    #[test]
    fn issued_client_certificate_authenticates_over_tls() {
        let assets = TlsAssets::in_memory(&[]).unwrap();
        let client = assets
            .issue_client_certificate("jane", Some(SYSTEM_MASTERS))
            .unwrap();
        use rustls::pki_types::pem::PemObject as _;
        let chain = vec![CertificateDer::from_pem_slice(client.cert_pem.as_bytes()).unwrap()];
        let user = user_from_certificate(&chain).unwrap();
        assert_eq!(user.username, "jane");
        assert_eq!(user.groups, [SYSTEM_MASTERS, ALL_AUTHENTICATED]);

        // A handshake in memory: the server requests, verifies and exposes the certificate.
        let server_config = assets.server_config_with_client_auth().unwrap();
        let client_config = assets.client_config_with_certificate(&client).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut c = rustls::ClientConnection::new(client_config, name).unwrap();
        let mut s = rustls::ServerConnection::new(server_config).unwrap();
        for _ in 0..20 {
            if !c.is_handshaking() && !s.is_handshaking() {
                break;
            }
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            s.read_tls(&mut buf.as_slice()).unwrap();
            s.process_new_packets().unwrap();
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            c.read_tls(&mut buf.as_slice()).unwrap();
            c.process_new_packets().unwrap();
        }
        assert!(!s.is_handshaking());
        let peer = s.peer_certificates().unwrap();
        assert_eq!(user_from_certificate(peer).unwrap().username, "jane");
    }

    #[test]
    fn garbage_is_not_a_user() {
        assert_eq!(user_from_certificate(&[]), None);
        for junk in [
            &b""[..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x80, 0x00, 0x00],
            &[0x30, 0x03, 0x30, 0x01, 0x02],
        ] {
            assert_eq!(
                user_from_certificate(&[CertificateDer::from(junk.to_vec())]),
                None
            );
        }
    }
}
