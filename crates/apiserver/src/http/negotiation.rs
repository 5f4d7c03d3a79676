//! Which encoding an answer takes, from the request's `Accept` header, as
//! kube-apiserver negotiates it: the clauses by preference (`q`, then the more
//! specific first), the first one the server can write wins.

use http::HeaderMap;

use crate::objects::ApiError;
use crate::proto::PROTOBUF;

/// How an answer is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// JSON (also the answer to YAML and to no `Accept` at all).
    Json,
    /// Kubernetes' protobuf (`crate::proto`).
    Protobuf,
}

/// What the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept {
    /// The preferred encoding.
    preferred: Encoding,
    /// Whether a JSON answer is acceptable too.
    json_ok: bool,
}

impl Accept {
    /// The request's preferences. A header naming nothing the server writes
    /// gets JSON.
    pub fn of(headers: &HeaderMap) -> Self {
        let header = headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Self::parse(header)
    }

    fn parse(header: &str) -> Self {
        // (q, specificity, position, encoding) of each clause the server can write.
        let mut clauses: Vec<(u16, u8, usize, Encoding)> = Vec::new();
        for (position, clause) in header.split(',').enumerate() {
            let mut parts = clause.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let q = (q.clamp(0.0, 1.0) * 1000.0) as u16;
            let (specificity, encoding) = match media.as_str() {
                PROTOBUF => (2, Encoding::Protobuf),
                "application/json" | "application/yaml" => (2, Encoding::Json),
                "application/*" => (1, Encoding::Json),
                "*/*" => (0, Encoding::Json),
                _ => continue,
            };
            if q > 0 {
                clauses.push((q, specificity, position, encoding));
            }
        }
        clauses.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        match clauses.first() {
            None => Accept {
                preferred: Encoding::Json,
                json_ok: true,
            },
            Some(&(_, _, _, preferred)) => Accept {
                preferred,
                json_ok: clauses.iter().any(|c| c.3 == Encoding::Json),
            },
        }
    }

    /// The encoding of an answer that has a protobuf form.
    pub fn encoding(self) -> Encoding {
        self.preferred
    }

    /// The encoding of an answer that has none (custom resources): JSON, or
    /// 406 when the client accepts protobuf only, with kube's message.
    pub fn json_only(self) -> Result<Encoding, ApiError> {
        if self.preferred == Encoding::Json || self.json_ok {
            Ok(Encoding::Json)
        } else {
            Err(ApiError::NotAcceptable(format!(
                "only the following media types are accepted: application/json, application/yaml, {PROTOBUF}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(h: &str) -> Accept {
        Accept::parse(h)
    }

    #[test]
    fn kubectl_and_client_go_headers_negotiate_as_in_kube() {
        // client-go's typed clients with protobuf on (kubectl 1.32+).
        let typed = accept("application/vnd.kubernetes.protobuf, */*");
        assert_eq!(typed.encoding(), Encoding::Protobuf);
        assert_eq!(typed.json_only().unwrap(), Encoding::Json);
        let typed = accept("application/vnd.kubernetes.protobuf,application/json");
        assert_eq!(typed.encoding(), Encoding::Protobuf);
        // kubectl get's tables, the dynamic client, no header.
        for h in [
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
            "application/json, */*",
            "",
            "text/html",
        ] {
            assert_eq!(accept(h).encoding(), Encoding::Json, "{h}");
        }
        // Preference by q, then by specificity.
        assert_eq!(
            accept("application/json;q=0.5, application/vnd.kubernetes.protobuf").encoding(),
            Encoding::Protobuf
        );
        assert_eq!(
            accept("*/*, application/vnd.kubernetes.protobuf;q=0.9").encoding(),
            Encoding::Json
        );
        assert_eq!(
            accept("*/*, application/vnd.kubernetes.protobuf").encoding(),
            Encoding::Protobuf
        );
    }

    #[test]
    fn protobuf_only_is_not_acceptable_without_a_protobuf_form() {
        let only = accept("application/vnd.kubernetes.protobuf");
        assert_eq!(only.encoding(), Encoding::Protobuf);
        let err = only.json_only().unwrap_err();
        assert_eq!(err.code(), 406);
        assert!(
            err.to_string()
                .starts_with("only the following media types are accepted")
        );
        assert!(
            accept("application/vnd.kubernetes.protobuf, application/json;q=0")
                .json_only()
                .is_err()
        );
    }
}
