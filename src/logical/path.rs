//! The declarative path table every backend uses, mirroring Vault's `framework.Path`.
//!
//! A `PathSpec` holds a regex pattern with named captures, the typed fields of the path, one
//! handler per operation and an optional existence check. `PathTable` matches a request path,
//! merges captures into the parameters, validates them, calls the handler and adds Vault's
//! "unrecognized parameters" warning.
//!
//! A table also declares which captures are *names* that the backend canonicalises (AppRole
//! lower-cases role names; policy names are trimmed and lower-cased). The pipeline asks for the
//! canonical path before the existence check and the ACL, so that what is authorised is the object
//! the backend acts on: a deny on `role/admin/*` also covers `role/ADMIN/role-id`.

use regex::Regex;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

use super::{Field, FieldData, Operation, Request, Response};
use crate::error::{Error, Result};

/// A boxed, sendable future.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A handler for one operation on one path.
pub type Handler<B> =
    for<'a> fn(&'a B, &'a Request, &'a FieldData<'a>) -> BoxFut<'a, Result<Option<Response>>>;

/// An existence check: does the item this path names exist?
pub type ExistenceFn<B> =
    for<'a> fn(&'a B, &'a Request, &'a FieldData<'a>) -> BoxFut<'a, Result<bool>>;

/// One path of a backend.
pub struct PathSpec<B> {
    pattern: Regex,
    fields: Vec<Field>,
    ops: Vec<(Operation, Handler<B>)>,
    existence: Option<ExistenceFn<B>>,
    /// Any parameter is the handler's (Vault's `TakesArbitraryInput`): no "unrecognized
    /// parameters" warning.
    arbitrary: bool,
    /// Short help text.
    pub help: &'static str,
}

/// The anchored regex of a path pattern, compiled once per process: every mount of a backend
/// type builds the same path table, and a compiled regex is shared by its clones (each keeps
/// only its own small search cache), so a mount costs kilobytes rather than the ~200 KB its
/// own compilations took (500 kv mounts held 108 MB).
fn compiled(pattern: &str) -> Regex {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, Regex>>> =
        std::sync::OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(r) = cache.get(pattern) {
        return r.clone();
    }
    // The patterns are compile-time constants; a bad one is a programming error caught by
    // every test that builds the backend, so fall back to a never-matching regex.
    let r = Regex::new(&format!("^{pattern}"))
        .unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| unreachable_regex()));
    cache.insert(pattern.to_owned(), r.clone());
    r
}

impl<B> PathSpec<B> {
    /// A path matching `pattern` (anchored at the start; add `$` to anchor the end).
    pub fn new(pattern: &str) -> Self {
        PathSpec {
            pattern: compiled(pattern),
            fields: Vec::new(),
            ops: Vec::new(),
            existence: None,
            arbitrary: false,
            help: "",
        }
    }

    /// Takes any parameter (Vault's `TakesArbitraryInput`, e.g. `sys/wrapping/wrap`).
    pub fn takes_arbitrary_input(mut self) -> Self {
        self.arbitrary = true;
        self
    }

    /// Declares a field.
    pub fn field(
        mut self,
        name: &'static str,
        ty: super::FieldType,
        description: &'static str,
    ) -> Self {
        self.fields.push(Field {
            name,
            ty,
            description,
        });
        self
    }

    /// Registers the handler for an operation.
    pub fn on(mut self, op: Operation, h: Handler<B>) -> Self {
        self.ops.push((op, h));
        self
    }

    /// Registers the existence check.
    pub fn existence(mut self, f: ExistenceFn<B>) -> Self {
        self.existence = Some(f);
        self
    }

    /// Sets the help text.
    pub fn help(mut self, help: &'static str) -> Self {
        self.help = help;
        self
    }

    fn handler(&self, op: Operation) -> Option<Handler<B>> {
        self.ops.iter().find(|(o, _)| *o == op).map(|(_, h)| *h)
    }
}

#[expect(
    clippy::panic,
    reason = "only reachable if the regex engine rejects \"$^\""
)]
fn unreachable_regex() -> Regex {
    panic!("regex engine rejected a trivial pattern")
}

/// How a backend canonicalises a name it finds in a path, as Vault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameForm {
    /// Lower-cased (AppRole role names).
    Lower,
    /// Surrounding white space removed, then lower-cased (policy names).
    TrimLower,
}

impl NameForm {
    /// The canonical form of `name`. Lower-casing maps each character on its own, as Go's
    /// `strings.ToLower` does (no final-sigma rule; `İ` becomes `i`).
    pub fn apply(self, name: &str) -> String {
        let name = match self {
            NameForm::Lower => name,
            NameForm::TrimLower => name.trim(),
        };
        name.chars()
            .map(|c| c.to_lowercase().next().unwrap_or(c))
            .collect()
    }
}

/// The ordered path table of a backend.
pub struct PathTable<B> {
    paths: Vec<PathSpec<B>>,
    /// Captures that hold names, with the form the backend keeps them in.
    names: Vec<(&'static str, NameForm)>,
    /// What the backend is, for `path-help` on the mount itself.
    description: &'static str,
}

impl<B: Sync> PathTable<B> {
    /// Builds a table; the first matching pattern wins.
    pub fn new(paths: Vec<PathSpec<B>>) -> Self {
        PathTable {
            paths,
            names: Vec::new(),
            description: "",
        }
    }

    /// Sets the backend's description, shown by `path-help` on the mount itself.
    pub fn description(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    /// Declares that every capture called `capture` is a name the backend keeps in `form`.
    pub fn name(mut self, capture: &'static str, form: NameForm) -> Self {
        self.names.push((capture, form));
        self
    }

    /// The pattern matching all of `path`, with its captures.
    fn matching<'t, 'p>(&'t self, path: &'p str) -> Option<(&'t PathSpec<B>, regex::Captures<'p>)> {
        for spec in &self.paths {
            // `is_match` runs without capture slots, so rejecting the many non-matching patterns
            // is cheap; `captures` is then run once, on the pattern that matches.
            if !spec.pattern.is_match(path) {
                continue;
            }
            let Some(caps) = spec.pattern.captures(path) else {
                continue;
            };
            if caps.get(0).map(|m| m.end()) == Some(path.len()) {
                return Some((spec, caps));
            }
        }
        None
    }

    /// `path` with each declared name capture in its canonical form, or `None` when it already
    /// is canonical (or matches no pattern). The result may match another pattern: a policy name
    /// of only spaces leaves `policies/acl/`, the list path, as in OpenBao.
    pub fn canonical_path(&self, path: &str) -> Option<String> {
        // The common case (nothing to lower-case, no white space) skips the pattern match.
        let trims = self.names.iter().any(|(_, f)| *f == NameForm::TrimLower);
        let unchanged =
            |c: char| c.to_lowercase().next() == Some(c) && !(trims && c.is_whitespace());
        if self.names.is_empty() || path.chars().all(unchanged) {
            return None;
        }
        let (_, caps) = self.matching(path)?;
        let mut spans: Vec<(std::ops::Range<usize>, String)> = self
            .names
            .iter()
            .filter_map(|(capture, form)| {
                caps.name(capture)
                    .map(|m| (m.range(), form.apply(m.as_str())))
            })
            .filter(|(range, canonical)| path.get(range.clone()) != Some(canonical.as_str()))
            .collect();
        if spans.is_empty() {
            return None;
        }
        spans.sort_by_key(|(range, _)| range.start);
        let mut out = String::with_capacity(path.len());
        let mut done = 0;
        for (range, canonical) in spans {
            // Named groups of one match never overlap unless nested; skip a nested one.
            if range.start < done {
                continue;
            }
            out.push_str(path.get(done..range.start)?);
            out.push_str(&canonical);
            done = range.end;
        }
        out.push_str(path.get(done..)?);
        Some(out)
    }

    fn route<'t>(&'t self, req: &Request) -> Option<(&'t PathSpec<B>, FieldData<'t>, Vec<String>)> {
        let (spec, caps) = self.matching(&req.path)?;
        let mut data = req.data.clone();
        let mut replaced = Vec::new();
        for name in spec.pattern.capture_names().flatten() {
            if let Some(m) = caps.name(name) {
                if data.contains_key(name) {
                    replaced.push(name.to_string());
                }
                data.insert(name.to_string(), Value::String(m.as_str().to_string()));
            }
        }
        Some((spec, FieldData::new(data, &spec.fields), replaced))
    }

    /// Runs the existence check of the matching path, if it has one.
    pub async fn existence(&self, backend: &B, req: &Request) -> Result<Option<bool>> {
        let Some((spec, data, _)) = self.route(req) else {
            return Ok(None);
        };
        match spec.existence {
            Some(check) => {
                // Vault validates the fields while routing the existence check and reports a bad
                // value from there, without the "Field validation failed" prefix of `handle`.
                data.validate()?;
                check(backend, req, &data).await.map(Some)
            }
            None => Ok(None),
        }
    }

    /// Dispatches the request to the matching path's handler.
    pub async fn handle(&self, backend: &B, req: &Request) -> Result<Option<Response>> {
        if req.operation == Operation::Help {
            return self.help(req).map(Some);
        }
        let (spec, data, replaced) = self.route(req).ok_or(Error::UnsupportedPath)?;
        let op = match req.operation {
            // A path without a create handler serves create with its update handler, as Vault does.
            Operation::Create if spec.handler(Operation::Create).is_none() => Operation::Update,
            op => op,
        };
        let handler = spec.handler(op).ok_or(Error::UnsupportedOperation)?;
        data.validate().map_err(|e| match e {
            Error::BadRequest(msg) => Error::BadRequest(format!("Field validation failed: {msg}")),
            other => other,
        })?;
        let unknown = if spec.arbitrary {
            Vec::new()
        } else {
            data.unknown_keys()
        };
        let mut resp = handler(backend, req, &data).await?;
        if let Some(r) = resp.as_mut() {
            if !unknown.is_empty() {
                r.warnings.push(format!(
                    "Endpoint ignored these unrecognized parameters: [{}]",
                    unknown.join(" ")
                ));
            }
            if !replaced.is_empty() {
                r.warnings.push(format!(
                    "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [{}]",
                    replaced.join(" ")
                ));
            }
        }
        Ok(resp)
    }
}

impl<B: Sync> PathTable<B> {
    /// `?help=1`: the backend's own help on the mount itself, else the help of the matching
    /// path. The body is what the CLI's `path-help` decodes: `help`, `see_also`, `openapi`.
    fn help(&self, req: &Request) -> Result<Response> {
        let text = if req.path.is_empty() {
            self.root_help(&req.mount.kind)
        } else {
            let (spec, _) = self.matching(&req.path).ok_or(Error::UnsupportedPath)?;
            path_help(&req.path, spec)
        };
        let body = serde_json::json!({
            "help": text,
            "see_also": null,
            "openapi": {
                "openapi": "3.0.2",
                "info": {
                    "title": "Coffer API",
                    "description": "Vault-compatible HTTP API. All routes are prefixed with `/v1/`.",
                    "version": env!("CARGO_PKG_VERSION"),
                },
                "paths": {},
            },
        });
        Ok(Response {
            raw_body: Some(body.to_string()),
            status: Some(200),
            ..Default::default()
        })
    }

    fn root_help(&self, kind: &str) -> String {
        let mut out = String::from("## DESCRIPTION\n\n");
        if self.description.is_empty() {
            out.push_str(&format!("The {kind} backend."));
        } else {
            out.push_str(self.description);
        }
        out.push_str(
            "\n\n## PATHS\n\nThe routes below are served by this mount. Ask for help on any path\n\
             matching a route for its parameters; whether a request is allowed still\n\
             depends on the policies of your token.\n",
        );
        for spec in &self.paths {
            out.push_str(&format!("\n    {}\n", spec.pattern.as_str()));
            if !spec.help.is_empty() {
                out.push_str(&format!("        {}\n", spec.help));
            }
        }
        out
    }
}

/// The help text of one path: the request, the route it matched, the summary and the fields.
fn path_help<B>(path: &str, spec: &PathSpec<B>) -> String {
    let mut out = format!(
        "Request:        {path}\nMatching Route: {}\n",
        spec.pattern.as_str()
    );
    if !spec.help.is_empty() {
        out.push_str(&format!("\n{}\n", spec.help));
    }
    if !spec.fields.is_empty() {
        out.push_str("\n## PARAMETERS\n");
        let mut fields: Vec<&Field> = spec.fields.iter().collect();
        fields.sort_by_key(|f| f.name);
        for f in fields {
            out.push_str(&format!(
                "\n    {} ({})\n\n        {}\n",
                f.name,
                f.ty.type_name(),
                f.description
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PathTable<()> {
        PathTable::new(vec![
            PathSpec::new("list/?$"),
            PathSpec::new("role/(?P<role_name>[A-Za-z0-9_.-]+)(?:/(?P<rest>.+))?$"),
            PathSpec::new("policy/(?P<name>.+)$"),
        ])
        .name("role_name", NameForm::Lower)
        .name("name", NameForm::TrimLower)
    }

    #[test]
    fn name_forms_match_go() {
        for (form, input, want) in [
            (NameForm::Lower, "ADMIN", "admin"),
            (NameForm::Lower, " Admin ", " admin "),
            (NameForm::TrimLower, " \tEditor\u{a0}", "editor"),
            (NameForm::TrimLower, "ΟΔΟΣ", "οδοσ"),
            (NameForm::TrimLower, "İx", "ix"),
            (NameForm::TrimLower, "  ", ""),
        ] {
            assert_eq!(form.apply(input), want, "{form:?} {input:?}");
        }
    }

    #[test]
    fn canonical_paths() {
        let t = table();
        for (path, want) in [
            ("role/ADMIN/role-id", Some("role/admin/role-id")),
            ("role/Admin", Some("role/admin")),
            ("role/admin/secret-id/LOOKUP", None),
            ("role/admin", None),
            ("policy/ EDITOR ", Some("policy/editor")),
            ("policy/A/B", Some("policy/a/b")),
            ("policy/ ", Some("policy/")),
            ("list/", None),
            ("unknown/ADMIN", None),
        ] {
            assert_eq!(t.canonical_path(path).as_deref(), want, "{path}");
        }
        let plain: PathTable<()> = PathTable::new(vec![PathSpec::new("role/(?P<role_name>.+)$")]);
        assert_eq!(plain.canonical_path("role/ADMIN"), None);
    }
}
