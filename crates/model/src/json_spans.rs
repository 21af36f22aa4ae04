//! Spans for JSON inventories: serde_json keeps no positions, so this walks the (already validated) text once
//! and records where every key and value is, so JSON errors get a line and column like TOML ones.

use crate::source::{Path, Span, SpanMap, Spans};

/// Records the spans of every key and value of `text`, which serde_json has already accepted, and
/// returns the keys written twice in one object (serde_json keeps the last silently; TOML refuses them,
/// and so does pifleet). On anything unexpected it stops quietly: spans are a convenience, never a
/// reason to fail.
pub(crate) fn record(text: &str, spans: &mut SpanMap) -> Vec<(Path, Span)> {
    let mut s = Scanner {
        bytes: text.as_bytes(),
        text,
        pos: 0,
        duplicates: Vec::new(),
    };
    s.value(&Path::root(), spans, 0);
    s.duplicates
}

struct Scanner<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
    duplicates: Vec<(Path, Span)>,
}

/// serde_json refuses nesting deeper than 128, so this limit is never reached on accepted input.
const MAX_DEPTH: usize = 256;

impl Scanner<'_> {
    fn ws(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.bytes.get(self.pos) == Some(&b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Scans a string starting at `"`, returning its decoded value.
    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        if self.bytes.get(self.pos) != Some(&b'"') {
            return None;
        }
        self.pos += 1;
        loop {
            match self.bytes.get(self.pos)? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    break;
                }
                _ => self.pos += 1,
            }
        }
        serde_json::from_str(self.text.get(start..self.pos)?).ok()
    }

    fn value(&mut self, path: &Path, spans: &mut SpanMap, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        let start = self.pos;
        match self.bytes.get(self.pos)? {
            b'{' => {
                self.pos += 1;
                let mut seen = std::collections::HashSet::new();
                if !self.eat(b'}') {
                    loop {
                        self.ws();
                        let key_start = self.pos;
                        let key = self.string()?;
                        if !seen.insert(key.clone()) {
                            self.duplicates
                                .push((path.key(key.as_str()), Span::new(key_start, self.pos)));
                        }
                        let child = path.key(key);
                        spans.insert(
                            child.clone(),
                            Spans {
                                key: Some(Span::new(key_start, self.pos)),
                                value: None,
                            },
                        );
                        if !self.eat(b':') {
                            return None;
                        }
                        self.value(&child, spans, depth + 1)?;
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                if !self.eat(b']') {
                    let mut i = 0;
                    loop {
                        self.value(&path.index(i), spans, depth + 1)?;
                        i += 1;
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
            }
            b'"' => {
                self.string()?;
            }
            _ => {
                while self
                    .bytes
                    .get(self.pos)
                    .is_some_and(|b| !matches!(b, b',' | b']' | b'}') && !b.is_ascii_whitespace())
                {
                    self.pos += 1;
                }
            }
        }
        spans.insert(
            path.clone(),
            Spans {
                key: None,
                value: Some(Span::new(start, self.pos)),
            },
        );
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keys_and_values() {
        let text = r#"{ "hosts": { "a\u0062": { "ports": ["1:1", 2] } } }"#;
        let mut spans = SpanMap::default();
        record(text, &mut spans);
        let p = Path::root().key("hosts").key("ab").key("ports").index(1);
        let s = spans.value_span(&p).expect("span");
        assert_eq!(&text[s.start..s.end], "2");
        let k = spans
            .key_span(&Path::root().key("hosts").key("ab"))
            .expect("key");
        assert_eq!(&text[k.start..k.end], r#""a\u0062""#);
    }
}
