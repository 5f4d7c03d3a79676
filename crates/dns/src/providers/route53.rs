//! AWS Route 53 through its REST API (version 2013-04-01): ListHostedZones,
//! ListResourceRecordSets and ChangeResourceRecordSets, signed with SigV4.
//!
//! Atomic: Route 53 applies a change batch all or nothing; a DELETE must name
//! the set exactly as it is and a CREATE fails if the set exists, so a batch
//! built from a stale read is refused whole (`InvalidChangeBatch`, reported as
//! [`ProviderError::Conflict`]). A batch holds at most 1000 changes; a larger
//! change set is sent as several batches, each atomic.
//!
//! Record sets with a routing policy (`SetIdentifier`) or an alias target are
//! not listed: fedmesh writes plain record sets only and leaves those alone.

use http::Method;

use super::http::{Endpoint, Response};
pub use super::sigv4::Credentials;
use super::sigv4::{self, Signing};
use super::xml::{self, Element, escape};
use super::{Change, ChangeSet, ConfigError, Provider, ProviderError, RecordSet, RecordType, Zone};
use fedmesh_core::dns::DomainName;

const NAME: &str = "route53";
const API: &str = "/2013-04-01";
/// Route 53's limit of changes in one ChangeResourceRecordSets request.
const MAX_BATCH: usize = 1000;
/// Bound on pages read from one listing (each page holds up to 300 sets).
const MAX_PAGES: usize = 10_000;

/// Settings of the Route 53 provider.
#[derive(Debug, Clone)]
pub struct Route53Config {
    /// The API's URL, `https://route53.amazonaws.com` for AWS.
    pub endpoint: String,
    /// The region requests are signed for (Route 53 is global: `us-east-1`).
    pub region: String,
    /// The access key.
    pub credentials: Credentials,
    /// Use only this hosted zone ID (for a name with a public and a private zone).
    pub zone_id: Option<String>,
}

/// The Route 53 provider.
pub struct Route53 {
    endpoint: Endpoint,
    config: Route53Config,
}

impl Route53 {
    /// A provider for `config`.
    pub fn new(config: Route53Config) -> Result<Self, ConfigError> {
        let endpoint = Endpoint::parse(NAME, &config.endpoint).map_err(|reason| ConfigError {
            provider: NAME,
            reason,
        })?;
        Ok(Self { endpoint, config })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Element, ProviderError> {
        let query = sigv4::query(params);
        let amz_date = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let host = self.endpoint.authority();
        let mut headers = sigv4::sign(
            &self.config.credentials,
            &Signing {
                region: &self.config.region,
                service: "route53",
                method: method.as_str(),
                host: &host,
                path,
                query: &query,
                body: &body,
                amz_date: &amz_date,
            },
        );
        if !body.is_empty() {
            headers.push(("content-type".into(), "application/xml".into()));
        }
        let target = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        let response = self.endpoint.send(method, &target, &headers, body).await?;
        answer(response)
    }
}

fn bad(reason: impl Into<String>) -> ProviderError {
    ProviderError::BadAnswer {
        provider: NAME,
        reason: reason.into(),
    }
}

/// The answer's document, or the error it reports.
fn answer(response: Response) -> Result<Element, ProviderError> {
    let text = String::from_utf8_lossy(&response.body);
    let doc = xml::parse(&text);
    if (200..300).contains(&response.status) {
        return doc.map_err(|e| bad(format!("status {}: {e}", response.status)));
    }
    // <ErrorResponse><Error><Code/><Message/></Error></ErrorResponse>, or
    // <InvalidChangeBatch><Messages><Message/></Messages></InvalidChangeBatch>.
    let (code, message) = match &doc {
        Ok(root) => {
            let error = root.child("Error").unwrap_or(root);
            let code = error.text_of("Code").unwrap_or(&root.name).to_string();
            let message = error
                .text_of("Message")
                .map(str::to_string)
                .or_else(|| {
                    let all: Vec<_> = root
                        .child("Messages")?
                        .all("Message")
                        .map(|m| m.text.as_str())
                        .collect();
                    Some(all.join("; "))
                })
                .unwrap_or_default();
            (code, message)
        }
        Err(_) => (String::new(), text.chars().take(200).collect()),
    };
    let reason = format!("{} {code}: {message}", response.status);
    Err(match (response.status, code.as_str()) {
        (_, "NoSuchHostedZone") | (404, _) => ProviderError::ZoneMissing {
            provider: NAME,
            zone: message,
        },
        (401 | 403, _)
        | (
            _,
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "AccessDenied"
            | "UnrecognizedClientException",
        ) => ProviderError::AuthRejected {
            provider: NAME,
            reason,
        },
        (_, "InvalidChangeBatch" | "PriorRequestNotComplete") => ProviderError::Conflict {
            provider: NAME,
            reason,
        },
        (429 | 500..=599, _) | (_, "Throttling") => ProviderError::Unreachable {
            provider: NAME,
            endpoint: "Route 53".into(),
            reason,
        },
        _ => ProviderError::Refused {
            provider: NAME,
            reason,
        },
    })
}

/// A name as Route 53 writes it (trailing dot, `\ddd` octal escapes), or
/// `None` for one fedmesh never writes (a wildcard, other characters).
fn read_name(text: &str) -> Option<DomainName> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.by_ref().take(3).collect();
            out.push(char::from(u8::from_str_radix(&digits, 8).ok()?));
        } else {
            out.push(c);
        }
    }
    DomainName::new("Route 53 record name", &out).ok()
}

/// A TXT value as Route 53 holds it: quoted strings, concatenated.
fn read_txt(value: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => out.extend(chars.next()),
            c if quoted => out.push(c),
            _ => {}
        }
    }
    out
}

fn write_value(rtype: RecordType, value: &str) -> String {
    match rtype {
        RecordType::Cname => format!("{value}."),
        RecordType::Txt => format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")),
        RecordType::A | RecordType::Aaaa => value.to_string(),
    }
}

fn read_set(element: &Element) -> Option<RecordSet> {
    if element.child("SetIdentifier").is_some() || element.child("AliasTarget").is_some() {
        return None;
    }
    let name = read_name(element.text_of("Name")?)?;
    let rtype = RecordType::parse(element.text_of("Type")?)?;
    let ttl = element.text_of("TTL")?.parse().ok()?;
    let values = element
        .child("ResourceRecords")?
        .all("ResourceRecord")
        .filter_map(|r| r.text_of("Value"))
        .map(|v| match rtype {
            RecordType::Txt => read_txt(v),
            RecordType::Cname => v.trim_end_matches('.').to_ascii_lowercase(),
            RecordType::A | RecordType::Aaaa => v.to_string(),
        })
        .collect();
    Some(RecordSet::new(name, rtype, ttl, values))
}

fn change_xml(change: &Change) -> String {
    let (action, set) = match change {
        Change::Add(s) => ("CREATE", s),
        Change::Remove(s) => ("DELETE", s),
        Change::Upsert(s) => ("UPSERT", s),
    };
    let values: String = set
        .values()
        .iter()
        .map(|v| {
            format!(
                "<ResourceRecord><Value>{}</Value></ResourceRecord>",
                escape(&write_value(set.rtype, v))
            )
        })
        .collect();
    format!(
        "<Change><Action>{action}</Action><ResourceRecordSet><Name>{}.</Name><Type>{}</Type><TTL>{}</TTL><ResourceRecords>{values}</ResourceRecords></ResourceRecordSet></Change>",
        set.name, set.rtype, set.ttl
    )
}

fn is_true(element: &Element, name: &str) -> bool {
    element.text_of(name) == Some("true")
}

impl Provider for Route53 {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn zones(&self) -> Result<Vec<Zone>, ProviderError> {
        let mut zones = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut params = vec![];
            if let Some(m) = &marker {
                params.push(("marker", m.as_str()));
            }
            let root = self
                .call(
                    Method::GET,
                    &format!("{API}/hostedzone"),
                    &params,
                    Vec::new(),
                )
                .await?;
            let list = root
                .child("HostedZones")
                .ok_or_else(|| bad("ListHostedZones: no HostedZones"))?;
            for zone in list.all("HostedZone") {
                let (Some(id), Some(name)) = (zone.text_of("Id"), zone.text_of("Name")) else {
                    continue;
                };
                let id = id.trim_start_matches("/hostedzone/").to_string();
                if self.config.zone_id.as_ref().is_some_and(|only| *only != id) {
                    continue;
                }
                if let Some(name) = read_name(name) {
                    zones.push(Zone { id, name });
                }
            }
            if !is_true(&root, "IsTruncated") {
                return Ok(zones);
            }
            marker = root.text_of("NextMarker").map(str::to_string);
        }
        Err(bad("ListHostedZones: more pages than fedmesh reads"))
    }

    async fn records(&self, zone: &Zone) -> Result<Vec<RecordSet>, ProviderError> {
        let path = format!("{API}/hostedzone/{}/rrset", zone.id);
        let mut sets = Vec::new();
        let mut next: Option<(String, String)> = None;
        for _ in 0..MAX_PAGES {
            let mut params = vec![];
            if let Some((name, rtype)) = &next {
                params.push(("name", name.as_str()));
                params.push(("type", rtype.as_str()));
            }
            let root = self.call(Method::GET, &path, &params, Vec::new()).await?;
            let list = root
                .child("ResourceRecordSets")
                .ok_or_else(|| bad("ListResourceRecordSets: no ResourceRecordSets"))?;
            sets.extend(list.all("ResourceRecordSet").filter_map(read_set));
            if !is_true(&root, "IsTruncated") {
                return Ok(sets);
            }
            next = match (
                root.text_of("NextRecordName"),
                root.text_of("NextRecordType"),
            ) {
                (Some(n), Some(t)) => Some((n.to_string(), t.to_string())),
                _ => {
                    return Err(bad(
                        "ListResourceRecordSets: truncated without a next record",
                    ));
                }
            };
        }
        Err(bad("ListResourceRecordSets: more pages than fedmesh reads"))
    }

    async fn apply(&self, zone: &Zone, changes: &ChangeSet) -> Result<(), ProviderError> {
        let path = format!("{API}/hostedzone/{}/rrset/", zone.id);
        for batch in changes.changes().chunks(MAX_BATCH) {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ChangeResourceRecordSetsRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeBatch><Comment>fedmesh</Comment><Changes>{}</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>",
                batch.iter().map(change_xml).collect::<String>()
            );
            self.call(Method::POST, &path, &[], body.into_bytes())
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_names_round_trip() {
        assert_eq!(
            read_txt(r#""heritage=fedmesh,a\"b" "c""#),
            "heritage=fedmesh,a\"bc"
        );
        assert_eq!(
            read_txt(&write_value(RecordType::Txt, "x\"y\\z")),
            "x\"y\\z"
        );
        assert_eq!(
            read_name("\\137x.example.com.").map(|n| n.to_string()),
            Some("_x.example.com".into())
        );
        assert_eq!(read_name("\\052.example.com."), None);
    }

    #[test]
    fn errors_are_typed() {
        let err = |status, body: &str| {
            answer(Response {
                status,
                body: body.to_string().into(),
            })
            .unwrap_err()
        };
        assert!(matches!(
            err(
                404,
                "<ErrorResponse><Error><Code>NoSuchHostedZone</Code><Message>No hosted zone found with ID: Z9</Message></Error></ErrorResponse>"
            ),
            ProviderError::ZoneMissing { .. }
        ));
        assert!(matches!(
            err(
                403,
                "<ErrorResponse><Error><Code>InvalidClientTokenId</Code></Error></ErrorResponse>"
            ),
            ProviderError::AuthRejected { .. }
        ));
        assert!(matches!(
            err(
                400,
                "<InvalidChangeBatch><Messages><Message>it already exists</Message></Messages></InvalidChangeBatch>"
            ),
            ProviderError::Conflict { .. }
        ));
        assert!(matches!(
            err(503, "down"),
            ProviderError::Unreachable { .. }
        ));
    }
}
