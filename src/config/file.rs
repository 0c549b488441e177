//! The raw structure walk: the HCL1 (or JSON) tree of a config file, checked block by block
//! against a [`Schema`] of the keys Coffer reads, the Vault keys it accepts without effect, and the
//! Vault keys it refuses. A checked block is a [`Section`]: each setting once, with its line, and
//! typed accessors (string, bool, integer, duration) that produce the start-up error messages.
//! What the values mean is decided in `mod.rs`, `listener.rs` and `storage.rs`.

use std::collections::BTreeMap;
use std::fmt::Display;

use serde_json::Value;

use super::ConfigError;
use crate::hcl::{Item, Node};
use crate::logical::field::parse_duration_seconds;

/// The keys one block (or the top level) accepts.
pub(super) struct Schema {
    /// Settings Coffer reads.
    pub known: &'static [&'static str],
    /// Vault settings accepted without effect; reported in `ServerConfig::ignored`.
    pub ignored: &'static [&'static str],
    /// Vault settings with an effect Coffer cannot provide: refused with a clear message.
    pub unsupported: &'static [&'static str],
    /// Labelled blocks the caller interprets (`storage`, `listener`), possibly repeated.
    pub blocks: &'static [&'static str],
}

/// A nested block such as `listener "tcp" { ... }`, left for the caller.
pub(super) struct Block<'a> {
    /// The block keyword as written (`storage`, `backend`, `listener`).
    pub kind: &'a str,
    /// The label (`"tcp"`, `"file"`), if one was given.
    pub label: Option<&'a str>,
    /// Every key as written, the keyword first (`audit "file" "to-file"` has three).
    pub keys: &'a [String],
    /// Line of the keyword.
    pub line: usize,
    /// The body (or whatever value stood there).
    pub node: &'a Node,
}

impl Block<'_> {
    /// The block as it is named in messages: `listener "tcp"`, or the bare keyword.
    pub fn name(&self) -> String {
        match self.label {
            Some(label) => format!("{} {label:?}", self.kind),
            None => self.kind.to_owned(),
        }
    }

    /// The items of the body; an error when the value is not a `{ ... }` block.
    pub fn body(&self, file: &str) -> Result<&[Item], ConfigError> {
        match self.node {
            Node::Object(items) => Ok(items),
            other => Err(ConfigError::new(
                file,
                &self.name(),
                self.line,
                format!("expected a block {{ ... }}, got {}", describe(other)),
            )),
        }
    }
}

/// One setting as written: its value and its line.
pub(super) struct Raw<'a> {
    pub node: &'a Node,
    pub line: usize,
}

/// A block body checked against its [`Schema`].
pub(super) struct Section<'a> {
    file: &'a str,
    /// `listener "tcp"` inside a block; empty at the top level.
    prefix: String,
    values: BTreeMap<&'a str, Raw<'a>>,
    /// Full names of the ignored settings present, in file order, each once.
    pub ignored: Vec<String>,
    /// The nested blocks named in the schema, in file order.
    pub blocks: Vec<Block<'a>>,
}

impl<'a> Section<'a> {
    /// Sorts `items` into settings, ignored settings and blocks; fails on the first unknown,
    /// unsupported or repeated setting.
    pub fn read(
        file: &'a str,
        prefix: String,
        items: &'a [Item],
        schema: &Schema,
    ) -> Result<Section<'a>, ConfigError> {
        let mut section = Section {
            file,
            prefix,
            values: BTreeMap::new(),
            ignored: Vec::new(),
            blocks: Vec::new(),
        };
        for item in items {
            let name = item.name();
            let label = item.keys.get(1).map(String::as_str);
            let line = item.key_line;
            if schema.blocks.contains(&name) {
                let node = &item.val;
                let kind = name;
                section.blocks.push(Block {
                    kind,
                    label,
                    keys: &item.keys,
                    line,
                    node,
                });
            } else if schema.ignored.contains(&name) {
                let full = section.setting(name);
                if !section.ignored.contains(&full) {
                    section.ignored.push(full);
                }
            } else if schema.unsupported.contains(&name) {
                let shown = label.map_or_else(|| name.to_owned(), |l| format!("{name} {l:?}"));
                return Err(section.error(
                    &shown,
                    line,
                    "this Vault setting is not supported by Coffer",
                ));
            } else if !schema.known.contains(&name) {
                return Err(section.error(name, line, "unknown setting"));
            } else if let Some(first) = section.values.get(name) {
                let problem = format!("set more than once (first on line {})", first.line);
                return Err(section.error(name, line, problem));
            } else if !matches!(item.val, Node::Literal(Value::Null)) {
                let node = &item.val;
                section.values.insert(name, Raw { node, line });
            }
        }
        Ok(section)
    }

    /// The full name of a setting in this section: `api_addr`, `listener "tcp".address`.
    pub fn setting(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    /// An error about `key` of this section.
    pub fn error(&self, key: &str, line: usize, problem: impl Display) -> ConfigError {
        ConfigError::new(self.file, &self.setting(key), line, problem)
    }

    /// The raw value of `key`, if set.
    pub fn raw(&self, key: &str) -> Option<&Raw<'a>> {
        self.values.get(key)
    }

    /// A string setting; numbers and booleans are refused rather than converted.
    pub fn string(&self, key: &str) -> Result<Option<(String, usize)>, ConfigError> {
        let Some(raw) = self.raw(key) else {
            return Ok(None);
        };
        match raw.node {
            Node::Literal(Value::String(s)) => Ok(Some((s.clone(), raw.line))),
            other => Err(self.error(key, raw.line, expected("a string", other))),
        }
    }

    /// A boolean the way Vault reads one: `true`, a number (non-zero is true), or a string
    /// Go's `strconv.ParseBool` accepts (`"1"`, `"t"`, `"true"`, `"FALSE"`, ...; `""` is false).
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        let Some(raw) = self.raw(key) else {
            return Ok(None);
        };
        let parsed = match raw.node {
            Node::Literal(Value::Bool(b)) => Some(*b),
            Node::Literal(Value::Number(n)) => Some(n.as_f64().is_some_and(|f| f != 0.0)),
            Node::Literal(Value::String(s)) => match s.as_str() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
                "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
                _ => None,
            },
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| self.error(key, raw.line, expected("a boolean", raw.node)))
    }

    /// A whole number, written as a number or as a string of digits.
    pub fn integer(&self, key: &str) -> Result<Option<(i64, usize)>, ConfigError> {
        let Some(raw) = self.raw(key) else {
            return Ok(None);
        };
        let parsed = match raw.node {
            Node::Literal(Value::Number(n)) => n.as_i64(),
            Node::Literal(Value::String(s)) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        parsed
            .map(|n| Some((n, raw.line)))
            .ok_or_else(|| self.error(key, raw.line, expected("a whole number", raw.node)))
    }

    /// A duration in whole seconds: a number of seconds, or a string such as `"300"`, `"768h"`,
    /// `"1h30m"` or `"7d"`. Negative durations are refused.
    pub fn duration(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        let Some(raw) = self.raw(key) else {
            return Ok(None);
        };
        let secs = match raw.node {
            Node::Literal(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i,
                (None, Some(f)) if f.is_finite() && f.abs() < 9.2e18 => f.trunc() as i64,
                _ => {
                    return Err(self.error(key, raw.line, format!("duration {n} is out of range")));
                }
            },
            Node::Literal(Value::String(s)) => parse_duration_seconds(s)
                .map_err(|e| self.error(key, raw.line, format!("invalid duration: {e}")))?,
            other => return Err(self.error(key, raw.line, expected("a duration", other))),
        };
        if secs < 0 {
            return Err(self.error(key, raw.line, "duration cannot be negative"));
        }
        Ok(Some(secs))
    }
}

/// `expected a string, got a number`.
fn expected(what: &str, got: &Node) -> String {
    match got {
        Node::Literal(v @ Value::String(_)) => format!("expected {what}, got {v}"),
        Node::Literal(v @ (Value::Number(_) | Value::Bool(_))) => {
            format!("expected {what}, got {} {v}", describe(got))
        }
        other => format!("expected {what}, got {}", describe(other)),
    }
}

/// The kind of a value, for messages.
pub(super) fn describe(node: &Node) -> &'static str {
    match node {
        Node::Literal(Value::String(_)) => "a string",
        Node::Literal(Value::Number(_)) => "a number",
        Node::Literal(Value::Bool(_)) => "a boolean",
        Node::Literal(_) => "null",
        Node::List(_) => "a list",
        Node::Object(_) => "a block",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hcl::parse_document;

    const SCHEMA: Schema = Schema {
        known: &["v"],
        ignored: &["old"],
        unsupported: &["seal"],
        blocks: &["blk"],
    };

    /// Reads `text` as a section named `b "x"` and applies `get` to it.
    fn with<T>(
        text: &str,
        get: impl Fn(&Section<'_>) -> Result<T, ConfigError>,
    ) -> Result<T, String> {
        let items = parse_document(text).map_err(|e| e.clone())?;
        let section = Section::read("f.hcl", "b \"x\"".to_owned(), &items, &SCHEMA);
        section.and_then(|s| get(&s)).map_err(|e| e.to_string())
    }

    fn fail(problem: &str) -> String {
        format!("f.hcl:1: b \"x\".v: {problem}")
    }

    #[test]
    fn durations() {
        let ok: &[(&str, i64)] = &[
            ("90", 90),
            ("1.9", 1),
            ("\"90\"", 90),
            ("\"1h30m\"", 5400),
            ("\"2d\"", 172_800),
            ("\"1m0.5s\"", 60),
            ("\"\"", 0),
        ];
        for (given, want) in ok {
            let got = with(&format!("v = {given}"), |s| s.duration("v"));
            assert_eq!(got, Ok(Some(*want)), "{given}");
        }
        let errors = [
            ("\"-1s\"", fail("duration cannot be negative")),
            ("[1]", fail("expected a duration, got a list")),
            ("{ a = 1 }", fail("expected a duration, got a block")),
            (
                "\"abc\"",
                fail("invalid duration: time: invalid duration \"abc\""),
            ),
            ("1e30", fail("duration 1e+30 is out of range")),
        ];
        for (given, want) in errors {
            assert_eq!(
                with(&format!("v = {given}"), |s| s.duration("v")),
                Err(want),
                "{given}"
            );
        }
        assert_eq!(with("", |s| s.duration("v")), Ok(None));
    }

    #[test]
    fn booleans_integers_and_strings() {
        let bools = [
            ("true", true),
            ("0", false),
            ("-1", true),
            ("\"T\"", true),
            ("\"False\"", false),
        ];
        for (given, want) in bools {
            assert_eq!(
                with(&format!("v = {given}"), |s| s.boolean("v")),
                Ok(Some(want)),
                "{given}"
            );
        }
        let got = with("v = \"on\"", |s| s.boolean("v"));
        assert_eq!(got, Err(fail("expected a boolean, got \"on\"")));

        let got = with("v = \" 12 \"", |s| s.integer("v"));
        assert_eq!(got, Ok(Some((12, 1))));
        let got = with("v = false", |s| s.integer("v"));
        assert_eq!(
            got,
            Err(fail("expected a whole number, got a boolean false"))
        );

        assert_eq!(
            with("v = \"s\"", |s| s.string("v")),
            Ok(Some(("s".to_owned(), 1)))
        );
        let got = with("v = true", |s| s.string("v"));
        assert_eq!(got, Err(fail("expected a string, got a boolean true")));
        assert_eq!(with("{\"v\": null}", |s| s.string("v")), Ok(None));
    }

    #[test]
    fn keys_are_sorted_into_settings_ignored_and_blocks() {
        let text = "old = 1\nblk \"a\" { x = 1 }\nv = 2\nold = 3\nblk { }\n";
        let got = with(text, |s| {
            let blocks: Vec<_> = s.blocks.iter().map(|b| (b.name(), b.line)).collect();
            Ok((s.ignored.clone(), blocks, s.setting("v")))
        });
        let blocks = vec![("blk \"a\"".to_owned(), 2), ("blk".to_owned(), 5)];
        assert_eq!(
            got,
            Ok((
                vec!["b \"x\".old".to_owned()],
                blocks,
                "b \"x\".v".to_owned()
            ))
        );

        let errors = [
            (
                "v = 1\n\nv = 2",
                "f.hcl:3: b \"x\".v: set more than once (first on line 1)",
            ),
            (
                "seal \"kms\" {}",
                "f.hcl:1: b \"x\".seal \"kms\": this Vault setting is not supported by Coffer",
            ),
            (
                "seal = 1",
                "f.hcl:1: b \"x\".seal: this Vault setting is not supported by Coffer",
            ),
            ("w = 1", "f.hcl:1: b \"x\".w: unknown setting"),
        ];
        for (text, want) in errors {
            assert_eq!(with(text, |_| Ok(())), Err(want.to_owned()), "{text}");
        }
    }
}
