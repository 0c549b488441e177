//! Property tests: the policy parser never panics and stays fast on hostile input, and the
//! trie-based ACL evaluator agrees with a deliberately naive model of Vault's rule selection.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{Acl, AclRequest, Capabilities, parse_policy};
use crate::logical::Operation;

/// Pieces of HCL and JSON syntax, so random text reaches deep into the parser.
const TOKENS: &[&str] = &[
    "path",
    "name",
    "capabilities",
    "policy",
    "allowed_parameters",
    "min_wrapping_ttl",
    "\"",
    "\"secret/*\"",
    "\"+/x\"",
    "{",
    "}",
    "[",
    "]",
    "=",
    ",",
    ":",
    "\n",
    " ",
    "\t",
    "<<EOT\n",
    "<<-EOT\n",
    "EOT",
    "  EOT\n",
    "#",
    "//",
    "/*",
    "*/",
    "\\",
    "\\u00e9",
    "${",
    "{{",
    "}}",
    "1",
    "-2",
    "1.5e3",
    "0x1F",
    "true",
    "null",
    "\"read\"",
    "\"deny\"",
    "é",
    "\u{0}",
    "\u{fffd}",
];

fn hcl_like() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_token_soup(text in hcl_like()) {
        let _ = parse_policy("p", &text);
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = parse_policy("p", &text);
    }

    #[test]
    fn parser_never_panics_on_mutated_fixtures(
        cut in 0usize..400,
        insert in prop::sample::select(TOKENS),
    ) {
        let base = r#"path "secret/+/x*" { capabilities = ["read", "list"] allowed_parameters = { "a" = ["b*"] } max_wrapping_ttl = "1h" comment = <<EOT
text
EOT
}
{"path": {"k/*": {"policy": "write"}}}"#;
        let at = base.char_indices().map(|(i, _)| i).nth(cut % base.chars().count()).unwrap_or(0);
        let mut text = base.to_owned();
        text.insert_str(at, insert);
        let _ = parse_policy("p", &text);
    }
}

/// Runs `f` and asserts it finishes within `limit` (generous: debug build on a busy machine; a
/// quadratic parser would need minutes on these sizes).
fn bounded(what: &str, limit: Duration, f: impl FnOnce()) {
    let start = Instant::now();
    f();
    let took = start.elapsed();
    assert!(took < limit, "{what} took {took:?}");
}

#[test]
fn parser_time_is_bounded_on_adversarial_sizes() {
    let limit = Duration::from_secs(10);
    let n = 100_000;
    let cases: Vec<(&str, String)> = vec![
        ("open braces", "{".repeat(n)),
        ("nested blocks", format!("path \"x\" {}", "{ a ".repeat(n))),
        ("nested lists", format!("a = {}", "[".repeat(n))),
        ("nested json", "{\"a\":".repeat(n)),
        (
            "nested json arrays",
            format!("{{\"path\":{}", "[".repeat(n)),
        ),
        (
            "long string",
            format!(
                "path \"{}\" {{ capabilities = [\"read\"] }}",
                "a".repeat(4 * n)
            ),
        ),
        (
            "unterminated string",
            format!("path \"{}", "a".repeat(4 * n)),
        ),
        ("long comment", format!("/*{}", "*".repeat(4 * n))),
        (
            "heredoc without end",
            format!("a = <<EOT\n{}", "line\n".repeat(n)),
        ),
        ("many heredocs", "a = <<EOT\nx\nEOT\n".repeat(n / 4)),
        (
            "indented heredoc",
            format!("a = <<-EOT\n{}  EOT\n", "    x\n".repeat(n)),
        ),
        (
            "many path blocks",
            "path \"a/+/b*\" { capabilities = [\"read\"] }\n".repeat(n / 10),
        ),
        (
            "many templating braces",
            format!("path \"{}\" {{}}", "{{".repeat(n)),
        ),
        ("long number", format!("a = {}", "9".repeat(4 * n))),
    ];
    for (what, text) in cases {
        bounded(what, limit, || {
            let _ = parse_policy("p", &text);
        });
    }
}

// ---------------------------------------------------------------------------------------------
// ACL model

/// One rule as written in the policy text.
#[derive(Debug, Clone)]
struct RawRule {
    path: String,
    caps: Capabilities,
}

const SEGMENTS: &[&str] = &["a", "b", "ab", "", "+", "a+", "a*"];
const PATH_SEGMENTS: &[&str] = &["a", "b", "ab", "", "a+", "a*", "ba", "abc"];
const CAP_BITS: &[Capabilities] = &[
    Capabilities::READ,
    Capabilities::LIST,
    Capabilities::UPDATE,
    Capabilities::SUDO,
    Capabilities::DENY,
];

fn rule() -> impl Strategy<Value = RawRule> {
    (
        prop::collection::vec(prop::sample::select(SEGMENTS), 1..5),
        any::<bool>(),
        prop::collection::vec(any::<bool>(), CAP_BITS.len()),
    )
        .prop_map(|(segs, glob, bits)| {
            let mut path = segs.join("/");
            // `+*` is a parse error; only add the glob where it is allowed.
            if glob && !path.ends_with('+') {
                path.push('*');
            }
            let caps = CAP_BITS
                .iter()
                .zip(bits)
                .filter(|(_, on)| *on)
                .fold(Capabilities::empty(), |acc, (c, _)| acc | *c);
            RawRule { path, caps }
        })
}

fn request_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(PATH_SEGMENTS), 1..6),
        any::<bool>(),
    )
        .prop_map(|(segs, slash)| {
            let mut p = segs.join("/");
            if slash {
                p.push('/');
            }
            p
        })
}

fn cap_keyword(c: Capabilities) -> &'static str {
    [
        (Capabilities::READ, "read"),
        (Capabilities::LIST, "list"),
        (Capabilities::UPDATE, "update"),
        (Capabilities::SUDO, "sudo"),
    ]
    .into_iter()
    .find(|(bit, _)| *bit == c)
    .map_or("deny", |(_, name)| name)
}

fn policy_text(rules: &[RawRule]) -> String {
    rules
        .iter()
        .map(|r| {
            let caps: Vec<String> = CAP_BITS
                .iter()
                .filter(|c| r.caps.contains(**c))
                .map(|c| format!("\"{}\"", cap_keyword(*c)))
                .collect();
            format!(
                "path \"{}\" {{ capabilities = [{}] }}\n",
                r.path,
                caps.join(", ")
            )
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Exact,
    Prefix,
    Wildcard,
}

/// A naive transcription of Vault's rules: linear scans, no trie, nothing precomputed.
struct Model {
    rules: HashMap<(Kind, String), Capabilities>,
}

impl Model {
    fn new(raw: &[RawRule]) -> Model {
        let mut rules: HashMap<(Kind, String), Capabilities> = HashMap::new();
        for r in raw {
            // The parser drops one leading `/`.
            let p = r.path.strip_prefix('/').unwrap_or(&r.path);
            let wc = p == "+" || p.starts_with("+/") || p.contains("/+");
            let key = if wc {
                (Kind::Wildcard, p.to_owned())
            } else if let Some(stripped) = p.strip_suffix('*') {
                (Kind::Prefix, stripped.to_owned())
            } else {
                (Kind::Exact, p.to_owned())
            };
            let caps = if r.caps.contains(Capabilities::DENY) {
                Capabilities::DENY
            } else {
                r.caps
            };
            let merged = match rules.get(&key) {
                None => caps,
                Some(old) if old.contains(Capabilities::DENY) => *old,
                Some(_) if caps.contains(Capabilities::DENY) => caps,
                Some(old) => *old | caps,
            };
            rules.insert(key, merged);
        }
        Model { rules }
    }

    fn exact(&self, path: &str) -> Option<Capabilities> {
        self.rules.get(&(Kind::Exact, path.to_owned())).copied()
    }

    fn non_exact(&self, path: &str) -> Option<Capabilities> {
        // (first wildcard, is prefix, wildcards, pattern, caps)
        type Cand = (usize, bool, usize, String, Capabilities);
        let mut cands: Vec<Cand> = Vec::new();
        let longest = self
            .rules
            .iter()
            .filter(|((k, p), _)| *k == Kind::Prefix && path.starts_with(p.as_str()))
            .max_by_key(|((_, p), _)| p.len());
        if let Some(((_, p), caps)) = longest {
            cands.push((p.len(), true, 0, p.clone(), *caps));
        }
        let has_wildcards = self.rules.keys().any(|(k, _)| *k == Kind::Wildcard);
        if !has_wildcards {
            return cands.first().map(|c| c.4);
        }
        let parts: Vec<&str> = path.split('/').collect();
        for ((k, full), caps) in &self.rules {
            if *k != Kind::Wildcard {
                continue;
            }
            let (pattern, is_prefix) = match full.strip_suffix('*') {
                Some(p) => (p, true),
                None => (full.as_str(), false),
            };
            let segs: Vec<&str> = pattern.split('/').collect();
            if parts.len() < segs.len() || (!is_prefix && parts.len() != segs.len()) {
                continue;
            }
            let mut ok = true;
            let mut wildcards = 0;
            for i in 0..segs.len() {
                let last_glob = is_prefix && i == segs.len() - 1;
                if segs[i] == "+" {
                    wildcards += 1;
                } else if segs[i] != parts[i] && !(last_glob && parts[i].starts_with(segs[i])) {
                    ok = false;
                    break;
                }
            }
            if ok {
                let first = full.find('+').unwrap();
                cands.push((first, is_prefix, wildcards, pattern.to_owned(), *caps));
            }
        }
        // Vault's `less`, spelt out: the greatest candidate wins.
        let less = |a: &Cand, b: &Cand| -> Ordering {
            a.0.cmp(&b.0)
                .then_with(|| b.1.cmp(&a.1))
                .then_with(|| b.2.cmp(&a.2))
                .then_with(|| a.3.len().cmp(&b.3.len()))
                .then_with(|| a.3.cmp(&b.3))
        };
        cands.into_iter().max_by(less).map(|c| c.4)
    }

    fn select(&self, list: bool, path: &str) -> Option<Capabilities> {
        let path = path.trim_start_matches('/');
        if let Some(c) = self.exact(path) {
            return Some(c);
        }
        if list {
            let trimmed = path.strip_suffix('/').unwrap_or(path);
            if let Some(c) = self.exact(trimmed) {
                return Some(c);
            }
            if path.ends_with('/')
                && let Some(c) = self.non_exact(trimmed)
            {
                return Some(c);
            }
        }
        self.non_exact(path)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn acl_agrees_with_naive_model(
        rules in prop::collection::vec(rule(), 0..12),
        paths in prop::collection::vec(request_path(), 1..8),
    ) {
        let text = policy_text(&rules);
        let policy = parse_policy("p", &text).unwrap();
        let acl = Acl::new(&[Arc::new(policy)]).unwrap();
        let model = Model::new(&rules);
        for path in &paths {
            for (op, list) in [(Operation::Read, false), (Operation::List, true), (Operation::Update, false)] {
                let req = AclRequest { operation: op, path, data: None, wrap_ttl: None };
                let got = acl.allow_operation(&req).capabilities;
                let want = model.select(list, path).unwrap_or(Capabilities::empty());
                prop_assert_eq!(got, want, "{:?} {} with\n{}", op, path, text);
            }
            let want = model.select(true, path).unwrap_or(Capabilities::empty()).keywords();
            prop_assert_eq!(acl.capabilities(path), want);
        }
    }
}
