//! The JSONPath subset CRD `additionalPrinterColumns` use: field steps
//! (`.spec.replicas`, `['a.b']`), indexes (`[0]`, `[-1]`), wildcards
//! (`[*]`, `.*`) and filters on a field (`[?(@.type=="Ready")]`, with
//! `==`, `!=`, `<`, `>`, `<=`, `>=` against a string, number or boolean,
//! or `[?(@.field)]` for presence). Missing keys yield no result, as
//! kubectl's `AllowMissingKeys(true)` does.

use serde_json::Value;

/// A path that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unrecognized column definition {path:?}: {reason}")]
pub struct ParsePathError {
    /// The path as given.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    Wildcard,
    Filter {
        field: Vec<String>,
        test: Option<(Op, Literal)>,
    },
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, reason: &str) -> ParsePathError {
        ParsePathError {
            path: self.src.to_string(),
            reason: format!("{reason} at offset {}", self.pos),
        }
    }
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }
    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> String {
        let len = self
            .rest()
            .find(['.', '[', ' ', ')', '=', '!', '<', '>'])
            .unwrap_or(self.rest().len());
        let out = self.rest()[..len].to_string();
        self.pos += len;
        out
    }
    fn quoted(&mut self) -> Result<String, ParsePathError> {
        let quote = self.peek().ok_or_else(|| self.err("expected a quote"))?;
        self.pos += 1;
        let end = self
            .rest()
            .find(quote)
            .ok_or_else(|| self.err("unterminated string"))?;
        let out = self.rest()[..end].to_string();
        self.pos += end + 1;
        Ok(out)
    }
    fn skip_spaces(&mut self) {
        while self.peek() == Some(' ') {
            self.pos += 1;
        }
    }
    fn literal(&mut self) -> Result<Literal, ParsePathError> {
        self.skip_spaces();
        match self.peek() {
            Some('"' | '\'') => Ok(Literal::Str(self.quoted()?)),
            _ => {
                let len = self.rest().find([')', ' ']).unwrap_or(self.rest().len());
                let word = self.rest()[..len].to_string();
                self.pos += len;
                match word.as_str() {
                    "true" => Ok(Literal::Bool(true)),
                    "false" => Ok(Literal::Bool(false)),
                    w => w
                        .parse::<f64>()
                        .map(Literal::Num)
                        .map_err(|_| self.err("expected a literal")),
                }
            }
        }
    }
    fn filter(&mut self) -> Result<Step, ParsePathError> {
        self.skip_spaces();
        if !self.eat("@") {
            return Err(self.err("expected @ in filter"));
        }
        let mut field = Vec::new();
        while self.eat(".") {
            let name = self.ident();
            if name.is_empty() {
                return Err(self.err("empty field name"));
            }
            field.push(name);
        }
        self.skip_spaces();
        let op = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find(|(s, _)| self.rest().starts_with(s));
        let test = match op {
            Some((s, op)) => {
                self.pos += s.len();
                Some((op, self.literal()?))
            }
            None => None,
        };
        self.skip_spaces();
        if !self.eat(")]") {
            return Err(self.err("expected )]"));
        }
        Ok(Step::Filter { field, test })
    }
    fn bracket(&mut self) -> Result<Step, ParsePathError> {
        if self.eat("?(") {
            return self.filter();
        }
        if self.eat("*]") {
            return Ok(Step::Wildcard);
        }
        if matches!(self.peek(), Some('"' | '\'')) {
            let name = self.quoted()?;
            if !self.eat("]") {
                return Err(self.err("expected ]"));
            }
            return Ok(Step::Field(name));
        }
        let end = self
            .rest()
            .find(']')
            .ok_or_else(|| self.err("expected ]"))?;
        let text = self.rest()[..end].trim().to_string();
        let index = text
            .parse::<i64>()
            .map_err(|_| self.err("unsupported subscript"))?;
        self.pos += end + 1;
        Ok(Step::Index(index))
    }
}

impl JsonPath {
    /// Parses a path, with or without the surrounding `{}` and leading `$`.
    pub fn parse(path: &str) -> Result<Self, ParsePathError> {
        let trimmed = path.trim();
        let inner = trimmed
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .unwrap_or(trimmed);
        let inner = inner.strip_prefix('$').unwrap_or(inner);
        let mut p = Parser { src: inner, pos: 0 };
        let mut steps = Vec::new();
        while p.pos < inner.len() {
            if p.eat("[") {
                steps.push(p.bracket()?);
            } else if p.eat(".") {
                if p.eat("*") {
                    steps.push(Step::Wildcard);
                    continue;
                }
                if p.peek() == Some('[') {
                    continue;
                }
                let name = p.ident();
                if name.is_empty() {
                    return Err(p.err("empty field name"));
                }
                steps.push(Step::Field(name));
            } else {
                return Err(p.err("expected . or ["));
            }
        }
        Ok(Self { steps })
    }

    /// Every value the path selects, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for step in &self.steps {
            let mut next = Vec::new();
            for v in current {
                apply(step, v, &mut next);
            }
            current = next;
        }
        current
    }
}

fn apply<'a>(step: &Step, v: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Field(name) => {
            if let Some(x) = v.get(name.as_str()) {
                out.push(x);
            }
        }
        Step::Index(i) => {
            if let Some(a) = v.as_array() {
                let len = i64::try_from(a.len()).unwrap_or(i64::MAX);
                let idx = if *i < 0 { len + i } else { *i };
                if let Some(x) = usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                    out.push(x);
                }
            }
        }
        Step::Wildcard => match v {
            Value::Array(a) => out.extend(a.iter()),
            Value::Object(m) => out.extend(m.values()),
            _ => {}
        },
        Step::Filter { field, test } => {
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                Value::Object(m) => m.values().collect(),
                _ => Vec::new(),
            };
            for item in items {
                let got = field.iter().try_fold(item, |x, k| x.get(k.as_str()));
                let keep = match (got, test) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(g), Some((op, lit))) => compare(g, *op, lit),
                };
                if keep {
                    out.push(item);
                }
            }
        }
    }
}

fn compare(got: &Value, op: Op, lit: &Literal) -> bool {
    let ordering = match (got, lit) {
        (Value::String(a), Literal::Str(b)) => a.as_str().partial_cmp(b.as_str()),
        (Value::Number(a), Literal::Num(b)) => a.as_f64().and_then(|a| a.partial_cmp(b)),
        (Value::Bool(a), Literal::Bool(b)) => a.partial_cmp(b),
        _ => None,
    };
    match (op, ordering) {
        (Op::Ne, None) => true,
        (_, None) => false,
        (Op::Eq, Some(o)) => o.is_eq(),
        (Op::Ne, Some(o)) => o.is_ne(),
        (Op::Lt, Some(o)) => o.is_lt(),
        (Op::Gt, Some(o)) => o.is_gt(),
        (Op::Le, Some(o)) => o.is_le(),
        (Op::Ge, Some(o)) => o.is_ge(),
    }
}
