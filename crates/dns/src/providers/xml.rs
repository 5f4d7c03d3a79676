//! Just enough XML for Route 53's answers: elements, text and the five
//! predefined entities (plus numeric ones); attributes, comments and the
//! declaration are skipped. Route 53 answers are small, so a tree is fine.

/// An element: its local name (namespace prefix dropped), children and text.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) children: Vec<Element>,
    pub(crate) text: String,
}

impl Element {
    /// The first child named `name`.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`.
    pub(crate) fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

/// `s` with `&`, `<`, `>`, `"` and `'` escaped, for building a request.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find(';')
            .ok_or_else(|| "an '&' without ';'".to_string())?;
        let entity = &rest[at + 1..at + end];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else {
                    entity.strip_prefix('#').and_then(|d| d.parse().ok())
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown entity &{entity};"))?
            }
        };
        out.push(c);
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

/// Parses a document into its root element.
pub(crate) fn parse(doc: &str) -> Result<Element, String> {
    let mut stack: Vec<Element> = vec![Element::default()];
    let mut rest = doc;
    while let Some(lt) = rest.find('<') {
        let text = &rest[..lt];
        if let Some(top) = stack.last_mut() {
            top.text.push_str(&unescape(text)?);
        }
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<?") {
            let end = after.find("?>").ok_or("an unclosed declaration")?;
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix("<!--") {
            let end = after.find("-->").ok_or("an unclosed comment")?;
            rest = &after[end + 3..];
        } else if let Some(after) = rest.strip_prefix("</") {
            let end = after.find('>').ok_or("an unclosed end tag")?;
            let name = local(after[..end].trim());
            let done = stack.pop().ok_or("an end tag without a start")?;
            if done.name != name || stack.is_empty() {
                return Err(format!("end tag </{name}> does not close <{}>", done.name));
            }
            if let Some(parent) = stack.last_mut() {
                parent.children.push(done);
            }
            rest = &after[end + 1..];
        } else {
            let end = rest.find('>').ok_or("an unclosed start tag")?;
            let tag = &rest[1..end];
            let (tag, empty) = match tag.strip_suffix('/') {
                Some(t) => (t, true),
                None => (tag, false),
            };
            let name = local(
                tag.split_whitespace()
                    .next()
                    .ok_or("a tag without a name")?,
            );
            let element = Element {
                name: name.to_string(),
                ..Element::default()
            };
            if empty {
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(element);
                }
            } else {
                stack.push(element);
            }
            rest = &rest[end + 1..];
        }
    }
    let mut top = stack.pop().ok_or("no document")?;
    if !stack.is_empty() {
        return Err(format!("element <{}> is not closed", top.name));
    }
    match top.children.len() {
        1 => Ok(top.children.remove(0)),
        _ => Err("not one root element".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_route53_style_documents() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListHostedZonesResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
  <HostedZones><HostedZone><Id>/hostedzone/Z1</Id><Name>example.com.</Name></HostedZone>
  <HostedZone><Id>/hostedzone/Z2</Id><Name>a&amp;b.org.</Name><Config/></HostedZone></HostedZones>
  <!-- a comment --><IsTruncated>false</IsTruncated>
</ListHostedZonesResponse>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "ListHostedZonesResponse");
        let zones: Vec<_> = root
            .child("HostedZones")
            .unwrap()
            .all("HostedZone")
            .map(|z| (z.text_of("Id").unwrap(), z.text_of("Name").unwrap()))
            .collect();
        assert_eq!(
            zones,
            [
                ("/hostedzone/Z1", "example.com."),
                ("/hostedzone/Z2", "a&b.org.")
            ]
        );
        assert_eq!(root.text_of("IsTruncated"), Some("false"));
        assert_eq!(unescape("&#34;x&#x22;").unwrap(), "\"x\"");
        for bad in ["<a>", "<a></b>", "<a>&bogus;</a>", "<a/><b/>", "text"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(escape("<\"a&b'>"), "&lt;&quot;a&amp;b&apos;&gt;");
    }
}
