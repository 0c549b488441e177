//! Tokeniser for HCL1, the syntax of Vault policies and server config files (and of their JSON
//! form, which uses the same tokens with `:` for `=`): identifiers, quoted strings (with `${...}` kept verbatim), heredocs, numbers, `true` /
//! `false` / `null`, punctuation, and `#`, `//` and `/* */` comments. Every token carries its
//! 1-based line and column for error messages.

use serde_json::Number;

/// One token. `=` and `:` both become [`Tok::Assign`]; heredocs become [`Tok::Str`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare word such as `path` or `capabilities`.
    Ident(String),
    /// A quoted string or heredoc, escapes resolved.
    Str(String),
    /// An integer or float literal.
    Num(Number),
    /// `true` / `false`.
    Bool(bool),
    /// `null` (JSON).
    Null,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `[`
    LBrack,
    /// `]`
    RBrack,
    /// `=` or `:`
    Assign,
    /// `,`
    Comma,
    /// End of input.
    Eof,
}

impl Tok {
    /// The token type name HCL1 uses in its messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Tok::Ident(_) => "IDENT",
            Tok::Str(_) => "STRING",
            Tok::Num(_) => "NUMBER",
            Tok::Bool(_) => "BOOL",
            Tok::Null => "NULL",
            Tok::LBrace => "LBRACE",
            Tok::RBrace => "RBRACE",
            Tok::LBrack => "LBRACK",
            Tok::RBrack => "RBRACK",
            Tok::Assign => "ASSIGN",
            Tok::Comma => "COMMA",
            Tok::Eof => "EOF",
        }
    }
}

/// A token with its 1-based line and column.
pub(crate) type Spanned = (Tok, usize, usize);

pub(crate) fn lex(text: &str) -> Result<Vec<Spanned>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut lx = Lexer {
        chars,
        pos: 0,
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    // Reads past the end HCL1's scanner makes while finishing the last token, when nothing
    // follows it: each moves the column it reports for EOF one further.
    let mut reads_past_end = 0;
    while let Some(c) = lx.peek(0) {
        let (line, col) = (lx.line, lx.col);
        let start = lx.pos;
        let tok = match c {
            c if c.is_whitespace() => {
                lx.bump();
                continue;
            }
            '#' => {
                lx.skip_line();
                reads_past_end = usize::from(lx.peek(0).is_none());
                continue;
            }
            '/' if lx.peek(1) == Some('/') => {
                lx.skip_line();
                reads_past_end = usize::from(lx.peek(0).is_none());
                continue;
            }
            '/' if lx.peek(1) == Some('*') => {
                lx.skip_block_comment()?;
                continue;
            }
            '{' | '}' | '[' | ']' | '=' | ':' | ',' => {
                lx.bump();
                match c {
                    '{' => Tok::LBrace,
                    '}' => Tok::RBrace,
                    '[' => Tok::LBrack,
                    ']' => Tok::RBrack,
                    ',' => Tok::Comma,
                    _ => Tok::Assign,
                }
            }
            '"' => Tok::Str(lx.string()?),
            '<' if lx.peek(1) == Some('<') => Tok::Str(lx.heredoc()?),
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => Tok::Num(lx.number()?),
            c if c.is_alphabetic() || c == '_' => {
                let word = lx.take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
                match word.as_str() {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "null" => Tok::Null,
                    _ => Tok::Ident(word),
                }
            }
            other => return Err(format!("At {line}:{col}: illegal char {other:?}")),
        };
        reads_past_end = if lx.peek(0).is_some() {
            0
        } else {
            match &tok {
                Tok::Ident(_) | Tok::Bool(_) | Tok::Null => 1,
                // A decimal integer is read to its end and once more; other numbers once.
                Tok::Num(_) => {
                    let text: String = lx.chars.get(start..).unwrap_or_default().iter().collect();
                    let digits = text.trim_start_matches(['-', '+']);
                    if !digits.starts_with('0') && digits.chars().all(|c| c.is_ascii_digit()) {
                        2
                    } else {
                        1
                    }
                }
                _ => 0,
            }
        };
        out.push((tok, line, col));
    }
    out.push((Tok::Eof, lx.line, lx.col + reads_past_end));
    Ok(out)
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn here(&self, reason: &str) -> String {
        format!("At {}:{}: {reason}", self.line, self.col)
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek(0).filter(|c| f(*c)) {
            s.push(c);
            self.bump();
        }
        s
    }

    fn skip_line(&mut self) {
        while self.peek(0).is_some_and(|c| c != '\n') {
            self.bump();
        }
    }

    fn skip_block_comment(&mut self) -> Result<(), String> {
        self.bump();
        self.bump();
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some('*'), Some('/')) => {
                    self.bump();
                    self.bump();
                    return Ok(());
                }
                (Some(_), _) => {
                    self.bump();
                }
                (None, _) => return Err(self.here("comment not terminated")),
            }
        }
    }

    /// A double-quoted string. `${ ... }` interpolations are kept verbatim (quotes included).
    fn string(&mut self) -> Result<String, String> {
        self.bump();
        let mut s = String::new();
        let mut depth = 0usize;
        loop {
            let Some(c) = self.bump() else {
                return Err(self.here("literal not terminated"));
            };
            match c {
                '\n' if depth == 0 => return Err(self.here("literal not terminated")),
                '"' if depth == 0 => return Ok(s),
                '$' if self.peek(0) == Some('{') => {
                    depth += 1;
                    self.bump();
                    s.push_str("${");
                }
                '}' if depth > 0 => {
                    depth -= 1;
                    s.push('}');
                }
                '\\' if depth == 0 => s.push(self.escape()?),
                c => s.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, String> {
        let Some(c) = self.bump() else {
            return Err(self.here("literal not terminated"));
        };
        Ok(match c {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            '"' | '\\' | '/' | '\'' => c,
            'u' | 'U' => {
                let width = if c == 'u' { 4 } else { 8 };
                let hex: String = (0..width).filter_map(|_| self.bump()).collect();
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.here("invalid unicode escape"))?
            }
            _ => return Err(self.here("illegal char escape")),
        })
    }

    /// `<<EOF` / `<<-EOF` heredocs, read as HCL1 reads them. The closing line is the anchor,
    /// optionally preceded by whitespace. `<<-` removes the closing line's leading whitespace from
    /// every line when every line starts with exactly that text (compared as text, so tabs, spaces
    /// and non-ASCII characters all count as themselves); otherwise the lines are kept as they are.
    /// `<<` keeps the lines and, as HCL1 does, the closing line's indentation after them.
    fn heredoc(&mut self) -> Result<String, String> {
        self.bump();
        self.bump();
        let indented = self.peek(0) == Some('-');
        if indented {
            self.bump();
        }
        let anchor = self.take_while(|c| c.is_alphanumeric() || c == '_');
        if anchor.is_empty() || self.bump() != Some('\n') {
            return Err(self.here("invalid heredoc anchor"));
        }
        let mut lines = Vec::new();
        let closing_indent = loop {
            if self.peek(0).is_none() {
                return Err(self.here("heredoc not terminated"));
            }
            let line = self.take_while(|c| c != '\n');
            self.bump();
            if let Some(indent) = line.strip_suffix(anchor.as_str())
                && indent.chars().all(char::is_whitespace)
            {
                break indent.to_owned();
            }
            lines.push(line);
        };
        let body = |lines: &[String]| lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        if !indented {
            return Ok(body(&lines) + &closing_indent);
        }
        let dedented: Option<Vec<&str>> = lines
            .iter()
            .map(|l| l.strip_prefix(closing_indent.as_str()))
            .collect();
        Ok(match dedented {
            Some(dedented) => dedented.iter().map(|l| format!("{l}\n")).collect(),
            None => body(&lines),
        })
    }

    /// A number as HCL1 reads one: `0x1F` is hexadecimal, `0755` octal (`08` is an error, as in
    /// HCL1, but `08.5` is a float), other integers decimal, anything else a float.
    fn number(&mut self) -> Result<Number, String> {
        let raw = self.take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'));
        let signed = raw.strip_prefix('+').unwrap_or(&raw);
        let (negative, digits) = match signed.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, signed),
        };
        let integer = |text: &str, radix: u32| {
            i64::from_str_radix(&format!("{}{text}", if negative { "-" } else { "" }), radix)
                .ok()
                .map(Number::from)
        };
        let parsed = if let Some(hex) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
            if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(self.here("illegal hexadecimal number"));
            }
            integer(hex, 16)
        } else if let Some(octal) = digits
            .strip_prefix('0')
            .filter(|o| !o.is_empty() && o.chars().all(|c| c.is_ascii_digit()))
        {
            if octal.contains(['8', '9']) {
                return Err(self.here("illegal octal number"));
            }
            integer(octal, 8)
        } else if let Ok(i) = signed.parse::<i64>() {
            Some(Number::from(i))
        } else if let Ok(u) = signed.parse::<u64>() {
            Some(Number::from(u))
        } else {
            signed.parse::<f64>().ok().and_then(Number::from_f64)
        };
        parsed.ok_or_else(|| self.here(&format!("invalid number {raw:?}")))
    }
}
