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

    /// `<<-` as HCL1 reads it: the closing line's indentation is removed from every line when
    /// every line starts with it (measured as text: tabs, spaces and multi-byte characters alike).
    #[test]
    fn indented_heredocs_strip_the_closing_lines_indentation() {
        let value = |text: &str| summary(text)[0].3.clone();
        // Multi-byte text and indentation: the old reader measured the indent in bytes and cut it in
        // characters, eating the first letters of "ünï" and "日本".
        assert_eq!(
            value("k = <<-EOT\n\u{3000}ünï\n\u{3000}  日本\n\u{3000}EOT\n"),
            json!("ünï\n  日本\n")
        );
        assert_eq!(
            value("k = <<-EOT\n  ünï\n    é\n  EOT\n"),
            json!("ünï\n  é\n")
        );
        // Tabs are removed as the closing line has them; a line with other indentation keeps all.
        assert_eq!(
            value("k = <<-EOT\n\t\ta\n\t\t\tb\n\t\tEOT\n"),
            json!("a\n\tb\n")
        );
        assert_eq!(value("k = <<-EOT\n\ta\n  b\n\tEOT\n"), json!("\ta\n  b\n"));
        // The closing line's indentation is what is removed, not the smallest one of the lines.
        assert_eq!(
            value("k = <<-EOT\n    a\n      b\n  EOT\n"),
            json!("  a\n    b\n")
        );
        assert_eq!(value("k = <<-EOT\n    a\nEOT\n"), json!("    a\n"));
        // An empty line lacks the indentation, so HCL1 keeps every line as it is.
        assert_eq!(
            value("k = <<-EOT\n  a\n\n  b\n  EOT\n"),
            json!("  a\n\n  b\n")
        );
        assert_eq!(value("k = <<-EOT\n  EOT\n"), json!(""));
        // `<<` keeps the lines, and HCL1 keeps the closing line's indentation after them.
        assert_eq!(value("k = <<EOT\n  ünï\n  EOT\n"), json!("  ünï\n  "));
        assert_eq!(value("k = <<EOT\nEOT\n"), json!(""));
        // A line that merely contains the anchor is content.
        assert_eq!(
            value("k = <<EOT\nEOT x\nx EOT\nEOT"),
            json!("EOT x\nx EOT\n")
        );
    }

    /// Integers as HCL1 reads them (Go's `ParseInt(text, 0, 64)`): a leading `0` is octal.
    #[test]
    fn octal_and_hexadecimal_integers() {
        for (text, want) in [
            ("0755", json!(493)),
            ("-0755", json!(-493)),
            ("0", json!(0)),
            ("00", json!(0)),
            ("10", json!(10)),
            ("0x1F", json!(31)),
            ("0X1f", json!(31)),
            ("-0x10", json!(-16)),
            ("08.5", json!(8.5)),
            ("0.5", json!(0.5)),
            ("09e1", json!(90.0)),
        ] {
            assert_eq!(summary(&format!("mode = {text}"))[0].3, want, "{text}");
        }
        for (text, want) in [
            ("08", "At 1:10: illegal octal number"),
            ("0759", "At 1:12: illegal octal number"),
            ("0x", "At 1:10: illegal hexadecimal number"),
            ("0xg", "At 1:11: illegal hexadecimal number"),
        ] {
            let got = parse_document(&format!("mode = {text}")).err();
            assert_eq!(got.as_deref(), Some(want), "{text}");
        }
    }

    /// Syntax errors as HCL1 words and places them, each row as OpenBao 2.7.2 answered the
    /// same policy text (2026-12-02): the messages of each parser path, the column of EOF
    /// moving on with every read past the end (after a decimal integer, an identifier, a
    /// line comment; once more when a block looks for its `}`), and an `=` with nothing after
    /// it ending the document quietly.
    #[test]
    fn syntax_errors_read_as_hcl1_reports_them() {
        let cases = [
            (
                "x {",
                Some("At 1:5: object expected closing RBRACE got: EOF"),
            ),
            (
                "a { b = 1",
                Some("At 1:13: object expected closing RBRACE got: EOF"),
            ),
            (
                "a {\n",
                Some("At 2:2: object expected closing RBRACE got: EOF"),
            ),
            (
                "a = [1",
                Some("At 1:9: error parsing list, expected comma or list end, got: EOF"),
            ),
            (
                "a = [1,",
                Some("At 1:8: unexpected token while parsing list: EOF"),
            ),
            (
                "a = [}",
                Some("At 1:6: unexpected token while parsing list: RBRACE"),
            ),
            (
                "a = 1 b",
                Some("At 1:9: key 'b' expected start of object ('{') or assignment ('=')"),
            ),
            (
                "a \"b\" c",
                Some("At 1:9: key 'a \"b\" c' expected start of object ('{') or assignment ('=')"),
            ),
            (
                "p \"a\" { c = \"r\" x }",
                Some("At 1:19: key 'x' expected start of object ('{') or assignment ('=')"),
            ),
            ("a = { b = }", Some("At 1:11: Unknown token: 1:11 RBRACE }")),
            ("a = null", Some("At 1:5: Unknown token: 1:5 IDENT null")),
            ("= 1", Some("At 1:1: no object keys found!")),
            (
                "a = 1 }",
                Some("At 1:7: expected: IDENT | STRING | ASSIGN | LBRACE got: RBRACE"),
            ),
            (
                "a = 1,, b = 2",
                Some("At 1:7: expected: IDENT | STRING | ASSIGN | LBRACE got: COMMA"),
            ),
            (
                "a = [1, {",
                Some(
                    "At 1:9: error while trying to parse object within list: At 1:11: object expected closing RBRACE got: EOF",
                ),
            ),
            (
                "a = [[1], [x]]",
                Some(
                    "At 1:11: error while trying to parse list within list: At 1:12: unexpected token while parsing list: IDENT",
                ),
            ),
            ("a = ", None),
            ("a = 1 b = ", None),
            ("a = [,1]", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_document(text).err().as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let cases = [
            ("a = x", "At 1:5: Unknown token: 1:5 IDENT x"),
            ("x {", "At 1:5: object expected closing RBRACE got: EOF"),
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
