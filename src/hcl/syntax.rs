//! A small reader for the HCL dialect Vault policies and server config files are written in (HCL1)
//! and for their JSON form.
//!
//! Vault parses both with the first-generation HCL library, which is laxer than HCL2 (and so
//! than `hcl-rs`): several attributes may share one line (`path "x" { a = 1 b = 2 }`), items may be
//! separated by commas, block bodies may use quoted keys, and a JSON document whose objects contain
//! only objects is "flattened" into nested keys. This module reproduces that shape: it turns the
//! text into a tree of [`Item`]s (keys, the line of the `=`/`:` or 0 for a block, and a [`Node`]),
//! which `policy::parse` and `config::file` then interpret with Vault's rules.

use serde_json::Value;

use super::lexer::{Spanned, Tok, lex};

/// A value in the tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// A string, number, bool or (JSON only) null.
    Literal(Value),
    /// `[a, b, ...]`.
    List(Vec<Node>),
    /// `{ ... }` or a block body.
    Object(Vec<Item>),
}

impl Node {
    /// The name Vault's HCL library gives this node type in error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Node::Literal(_) => "*ast.LiteralType",
            Node::List(_) => "*ast.ListType",
            Node::Object(_) => "*ast.ObjectType",
        }
    }
}

/// One `keys... = value` or `keys... { body }` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    /// The keys, e.g. `["path", "secret/*"]`.
    pub keys: Vec<String>,
    /// Line of the `=` (or `:` in JSON); 0 for block syntax, as in Vault's messages.
    pub line: usize,
    /// Line of the first key, blocks included (for messages that should always name a line).
    pub key_line: usize,
    /// The value or block body.
    pub val: Node,
}

/// Parses HCL or JSON text into its top-level items. JSON input (first non-blank character `{`) is
/// flattened the way Vault's JSON reader does it. Errors read like `At 3:7: <reason>`.
pub(crate) fn parse_document(text: &str) -> Result<Vec<Item>, String> {
    let tokens = lex(text)?;
    let json = matches!(tokens.first(), Some((Tok::LBrace, ..)));
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
        json,
    };
    let mut items = if json {
        match parser.object()? {
            Node::Object(items) => items,
            _ => Vec::new(),
        }
    } else {
        parser.items(&Tok::Eof)?
    };
    if !matches!(parser.peek(), Tok::Eof) {
        return Err(parser.error("unexpected token after the root object"));
    }
    if json {
        flatten_list(&mut items);
    }
    Ok(items)
}

/// Deepest nesting of objects and lists accepted, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

struct Parser {
    tokens: Vec<Spanned>,
    pos: usize,
    depth: usize,
    /// The JSON form (its own reader in Vault); otherwise HCL1, whose quirks below apply.
    json: bool,
}

/// HCL1 on an `=` with nothing after it: the item list it is in simply ends (the document, at
/// the top level; inside a block, the block then lacks its `}`). Passed up as an error text.
const VALUE_AT_EOF: &str = "\u{0}value at EOF";

/// A token as HCL1 prints it in `Unknown token: 1:5 IDENT x`: its type and text.
fn token_text(tok: &Tok) -> (&'static str, String) {
    match tok {
        Tok::Ident(w) => ("IDENT", w.clone()),
        // HCL1 has no null: the word is an identifier.
        Tok::Null => ("IDENT", "null".into()),
        Tok::Str(s) => ("STRING", format!("{s:?}")),
        Tok::Num(n) => ("NUMBER", n.to_string()),
        Tok::Bool(b) => ("BOOL", b.to_string()),
        Tok::LBrace => ("LBRACE", "{".into()),
        Tok::RBrace => ("RBRACE", "}".into()),
        Tok::LBrack => ("LBRACK", "[".into()),
        Tok::RBrack => ("RBRACK", "]".into()),
        Tok::Assign => ("ASSIGN", "=".into()),
        Tok::Comma => ("COMMA", ",".into()),
        Tok::Eof => ("EOF", String::new()),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&Tok::Eof, |t| &t.0)
    }

    fn line(&self) -> usize {
        self.tokens.get(self.pos).map_or(0, |t| t.1)
    }

    fn next(&mut self) -> Tok {
        let tok = self.peek().clone();
        self.pos += 1;
        tok
    }

    fn at(&self) -> (usize, usize) {
        self.tokens.get(self.pos).map_or((0, 0), |t| (t.1, t.2))
    }

    fn error(&self, reason: &str) -> String {
        let (line, col) = self.at();
        format!("At {line}:{col}: {reason} got: {}", self.peek().describe())
    }

    /// [`Parser::error`] for a token HCL1 reads a second time from its scanner: at EOF, every
    /// read moves the reported column one further.
    fn error_read_again(&self, reason: &str) -> String {
        let (line, col) = self.at();
        let col = col + usize::from(matches!(self.peek(), Tok::Eof) && !self.json);
        format!("At {line}:{col}: {reason} got: {}", self.peek().describe())
    }

    /// Items until `end` or the end of input (neither consumed). One comma may follow each
    /// item, as in HCL1.
    fn items(&mut self, end: &Tok) -> Result<Vec<Item>, String> {
        let mut items = Vec::new();
        let mut after_item = false;
        loop {
            match self.peek() {
                t if t == end => return Ok(items),
                Tok::Comma if after_item || (self.json && !items.is_empty()) => {
                    self.pos += 1;
                    after_item = false;
                    continue;
                }
                Tok::Eof => return Ok(items),
                _ => {}
            }
            let key_line = self.line();
            let mut keys = Vec::new();
            let mut shown = Vec::new();
            while let Tok::Ident(k) | Tok::Str(k) = self.peek() {
                shown.push(match self.peek() {
                    Tok::Str(_) => format!("{k:?}"),
                    _ => k.clone(),
                });
                keys.push(k.clone());
                self.pos += 1;
            }
            if !keys.is_empty() && !self.json && matches!(self.peek(), Tok::Eof | Tok::RBrace) {
                let (line, col) = self.at();
                return Err(format!(
                    "At {line}:{col}: key '{}' expected start of object ('{{') or assignment ('=')",
                    shown.join(" ")
                ));
            }
            if keys.is_empty() && !self.json && matches!(self.peek(), Tok::Assign) {
                let (line, col) = self.at();
                return Err(format!("At {line}:{col}: no object keys found!"));
            }
            if keys.is_empty() {
                return Err(self.error("expected: IDENT | STRING | ASSIGN | LBRACE"));
            }
            after_item = true;
            match self.peek() {
                Tok::Assign if keys.len() == 1 => {
                    let line = self.line();
                    self.pos += 1;
                    let val = match self.value() {
                        Err(e) if e == VALUE_AT_EOF => return Ok(items),
                        other => other?,
                    };
                    items.push(Item {
                        keys,
                        line,
                        key_line,
                        val,
                    });
                }
                Tok::Assign => return Err(self.error("nested object expected: LBRACE")),
                Tok::LBrace => {
                    let val = self.object()?;
                    items.push(Item {
                        keys,
                        line: 0,
                        key_line,
                        val,
                    });
                }
                _ => return Err(self.error("expected: IDENT | STRING | ASSIGN | LBRACE")),
            }
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Node, String> {
        self.enter()?;
        self.next(); // the `{`
        let items = self.items(&Tok::RBrace)?;
        if !matches!(self.peek(), Tok::RBrace) {
            return Err(self.error_read_again("object expected closing RBRACE"));
        }
        self.next(); // the `}`
        self.depth -= 1;
        Ok(Node::Object(items))
    }

    fn value(&mut self) -> Result<Node, String> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.pos += 1;
                Ok(Node::Literal(Value::String(s)))
            }
            Tok::Num(n) => {
                self.pos += 1;
                Ok(Node::Literal(Value::Number(n)))
            }
            Tok::Bool(b) => {
                self.pos += 1;
                Ok(Node::Literal(Value::Bool(b)))
            }
            Tok::Null if self.json => {
                self.pos += 1;
                Ok(Node::Literal(Value::Null))
            }
            Tok::LBrace => self.object(),
            Tok::LBrack if self.json => self.list(),
            Tok::LBrack => self.hcl_list(),
            Tok::Eof if !self.json => Err(VALUE_AT_EOF.into()),
            other if !self.json => {
                let (line, col) = self.at();
                let (kind, text) = token_text(&other);
                Err(format!(
                    "At {line}:{col}: Unknown token: {line}:{col} {kind} {text}"
                ))
            }
            _ => Err(self.error("Unknown token")),
        }
    }

    /// A list as HCL1 reads it: literals, objects and lists, commas between them optional
    /// only where it skips them; its own messages.
    fn hcl_list(&mut self) -> Result<Node, String> {
        self.enter()?;
        self.next(); // the `[`
        let mut out = Vec::new();
        let mut need_comma = false;
        loop {
            let tok = self.peek().clone();
            if need_comma && !matches!(tok, Tok::Comma | Tok::RBrack) {
                return Err(self.error("error parsing list, expected comma or list end,"));
            }
            match tok {
                Tok::Str(_) | Tok::Num(_) | Tok::Bool(_) => {
                    out.push(self.value()?);
                    need_comma = true;
                }
                Tok::Comma => {
                    self.pos += 1;
                    need_comma = false;
                }
                Tok::LBrace | Tok::LBrack => {
                    let (line, col) = self.at();
                    let (node, what) = match tok {
                        Tok::LBrace => (self.object(), "object"),
                        _ => (self.hcl_list(), "list"),
                    };
                    out.push(node.map_err(|e| {
                        format!(
                            "At {line}:{col}: error while trying to parse {what} within list: {e}"
                        )
                    })?);
                    need_comma = matches!(tok, Tok::LBrace);
                }
                Tok::RBrack => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Node::List(out));
                }
                other => {
                    let (line, col) = self.at();
                    return Err(format!(
                        "At {line}:{col}: unexpected token while parsing list: {}",
                        other.describe()
                    ));
                }
            }
        }
    }

    fn list(&mut self) -> Result<Node, String> {
        self.enter()?;
        self.next(); // the `[`
        let mut out = Vec::new();
        loop {
            if matches!(self.peek(), Tok::RBrack) {
                self.pos += 1;
                self.depth -= 1;
                return Ok(Node::List(out));
            }
            out.push(self.value()?);
            match self.peek() {
                Tok::Comma => self.pos += 1,
                Tok::RBrack => {}
                _ => return Err(self.error("error parsing list, expected comma or list end,")),
            }
        }
    }
}

/// Vault's JSON reader rewrites `{"a": {"b": {...}}}` into an item with keys `a b` whenever every
/// member of an object is itself an object (and a list whose elements are all objects into one
/// item per element). It does this for every object in the document, outside-in.
fn flatten_list(items: &mut Vec<Item>) {
    let mut frontier: Vec<Item> = std::mem::take(items);
    let mut out = Vec::new();
    while let Some(item) = frontier.pop() {
        match &item.val {
            Node::Object(children)
                if !children.is_empty()
                    && children.iter().all(|c| matches!(c.val, Node::Object(_))) =>
            {
                if let Node::Object(children) = item.val {
                    for child in children {
                        let mut keys = item.keys.clone();
                        keys.extend(child.keys);
                        frontier.push(Item {
                            keys,
                            line: item.line,
                            key_line: child.key_line,
                            val: child.val,
                        });
                    }
                }
            }
            Node::List(elems)
                if !elems.is_empty() && elems.iter().all(|e| matches!(e, Node::Object(_))) =>
            {
                if let Node::List(elems) = item.val {
                    for val in elems {
                        frontier.push(Item {
                            keys: item.keys.clone(),
                            line: item.line,
                            key_line: item.key_line,
                            val,
                        });
                    }
                }
            }
            _ => out.push(item),
        }
    }
    out.reverse();
    for item in &mut out {
        flatten_node(&mut item.val);
    }
    *items = out;
}

fn flatten_node(node: &mut Node) {
    match node {
        Node::Object(items) => flatten_list(items),
        Node::List(elems) => elems.iter_mut().for_each(flatten_node),
        Node::Literal(_) => {}
    }
}
