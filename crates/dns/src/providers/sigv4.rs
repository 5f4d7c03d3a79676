//! AWS Signature Version 4 for the few requests the Route 53 provider makes
//! (headers `host` and `x-amz-date`, plus `x-amz-security-token` with
//! temporary credentials), written out rather than taken from the AWS SDK to
//! keep the dependency graph small.

use std::fmt::Write as _;

use ring::{digest, hmac};

/// An AWS access key.
#[derive(Clone)]
pub struct Credentials {
    /// The access key ID (`AKIA...`).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret and token never reach a log.
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// One request to sign.
pub(crate) struct Signing<'a> {
    pub(crate) region: &'a str,
    pub(crate) service: &'a str,
    pub(crate) method: &'a str,
    /// The `Host` header's value.
    pub(crate) host: &'a str,
    /// The path, already made of unreserved characters and '/'.
    pub(crate) path: &'a str,
    /// The canonical query string (see [`query`]).
    pub(crate) query: &'a str,
    pub(crate) body: &'a [u8],
    /// `YYYYMMDDTHHMMSSZ`.
    pub(crate) amz_date: &'a str,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac_sha256(key: &[u8], data: &str) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
}

/// AWS's URI encoding: unreserved characters stay, everything else is %XX.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The canonical query string of `params`: encoded, sorted by name. The same
/// string goes into the URL.
pub(crate) fn query(params: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> =
        params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The headers that sign the request (`x-amz-date`, the token if any,
/// `authorization`); `Host` is sent by the HTTP client.
pub(crate) fn sign(credentials: &Credentials, request: &Signing<'_>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("host".to_string(), request.host.to_string()),
        ("x-amz-date".to_string(), request.amz_date.to_string()),
    ];
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token".to_string(), token.clone()));
    }
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        request.path,
        request.query,
        sha256_hex(request.body)
    );
    let date = request.amz_date.get(..8).unwrap_or(request.amz_date);
    let scope = format!("{date}/{}/{}/aws4_request", request.region, request.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        request.amz_date,
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac_sha256(
        format!("AWS4{}", credentials.secret_access_key).as_bytes(),
        date,
    );
    let k_region = hmac_sha256(k_date.as_ref(), request.region);
    let k_service = hmac_sha256(k_region.as_ref(), request.service);
    let k_signing = hmac_sha256(k_service.as_ref(), "aws4_request");
    let signature = hex(hmac_sha256(k_signing.as_ref(), &string_to_sign).as_ref());
    headers.remove(0);
    headers.push((
        "authorization".to_string(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published test suite, case `get-vanilla`.
    #[test]
    fn signs_aws_test_vector() {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let headers = sign(
            &credentials,
            &Signing {
                region: "us-east-1",
                service: "service",
                method: "GET",
                host: "example.amazonaws.com",
                path: "/",
                query: "",
                body: b"",
                amz_date: "20150830T123600Z",
            },
        );
        assert_eq!(
            headers,
            [
                ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
                (
                    "authorization".to_string(),
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".to_string()
                )
            ]
        );
    }

    #[test]
    fn query_is_encoded_and_sorted() {
        assert_eq!(
            query(&[("type", "A"), ("name", "a b.example.com.")]),
            "name=a%20b.example.com.&type=A"
        );
    }
}
