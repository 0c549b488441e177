//! A reader for HCL1, the configuration language of Vault's policies and server config files,
//! and for its JSON form (`{"path": {"secret/*": {...}}}`).
//!
//! `hcl-rs` implements HCL2, which rejects valid HCL1 (several attributes on one line, commas
//! between items, quoted block keys), so Coffer keeps its own small reader: [`lexer`] turns text
//! into tokens with line and column, [`syntax`] builds a tree of [`Item`]s and flattens JSON the
//! way Vault's reader does. The tree is untyped; `policy::parse` and `config::file` interpret it.

mod lexer;
mod syntax;

use serde_json::Value;

pub(crate) use syntax::{Item, Node, parse_document};

impl Item {
    /// The first key (`path` in `path "secret/*" { ... }`), or `""` for an item without keys.
    pub(crate) fn name(&self) -> &str {
        self.keys.first().map_or("", String::as_str)
    }
}

impl Node {
    /// The node as JSON: literals as they are, lists as arrays, objects keyed by first key.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Node::Literal(v) => v.clone(),
            Node::List(elems) => Value::Array(elems.iter().map(Node::to_json).collect()),
            Node::Object(items) => Value::Object(
                items
                    .iter()
                    .map(|i| (i.name().to_owned(), i.val.to_json()))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// `(keys, line, key_line, value as JSON)` of each top-level item.
    fn summary(text: &str) -> Vec<(Vec<String>, usize, usize, Value)> {
        parse_document(text)
            .expect("parses")
            .into_iter()
            .map(|i| (i.keys.clone(), i.line, i.key_line, i.val.to_json()))
            .collect()
    }

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn hcl1_items_carry_keys_lines_and_values() {
        let text = "# comment\nstorage \"file\" { path = \"/d\" }\n\nui = true, x = 1.5\n\
                    listener \"tcp\" {\n  address = \"127.0.0.1:8200\" // trailing\n}\n";
        let got = summary(text);
        let want = vec![
            (keys(&["storage", "file"]), 0, 2, json!({"path": "/d"})),
            (keys(&["ui"]), 4, 4, json!(true)),
            (keys(&["x"]), 4, 4, json!(1.5)),
            (
                keys(&["listener", "tcp"]),
                0,
                5,
                json!({"address": "127.0.0.1:8200"}),
            ),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn json_objects_of_objects_are_flattened_into_keys() {
        let text = "{\n \"storage\": {\"file\": {\"path\": \"/d\"}},\n \"listener\": [\n  \
                    {\"tcp\": {\"address\": \":8200\"}}\n ],\n \"ui\": true\n}";
        let got = summary(text);
        let want = vec![
            (keys(&["storage", "file"]), 2, 2, json!({"path": "/d"})),
            (
                keys(&["listener", "tcp"]),
                3,
                4,
                json!({"address": ":8200"}),
            ),
            (keys(&["ui"]), 6, 6, json!(true)),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn heredocs_and_block_comments_are_read() {
        let text = "/* a\n b */ k = <<EOT\nline one\nEOT\nm = <<-X\n    a\n      b\n    X\n";
        let got = summary(text);
        assert_eq!(got[0].3, json!("line one\n"));
        assert_eq!(got[1].3, json!("a\n  b\n"));
        assert_eq!((got[1].1, got[1].2), (5, 5));
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let cases = [
            ("a = ", "At 1:5: Unknown token got: EOF"),
            ("x {", "At 1:4: object expected closing RBRACE got: EOF"),
            ("a = \"open", "At 1:10: literal not terminated"),
            ("\n  @", "At 2:3: illegal char '@'"),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_document(text).err().as_deref(),
                Some(want),
                "{text:?}"
            );
        }
    }
}
