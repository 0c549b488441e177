//! `sys/tools/random` and `sys/tools/hash`: random bytes from the OS and SHA-2 digests, as Vault's
//! `vault write sys/tools/random/32` and `sys/tools/hash/sha2-512` answer them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore as _;
use serde_json::{Map, json};
use sha2::Digest as _;

use super::SystemBackend;
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<SystemBackend>;

/// The most random bytes one request may ask for (Vault's limit).
const MAX_RANDOM_BYTES: i64 = 128 * 1024;

pub(super) fn paths() -> Vec<PathSpec<SystemBackend>> {
    vec![
        P::new(
            r"tools/random(?:/(?P<source>\w(?:[\w.-]*\w)?))?(?:/(?P<urlbytes>\w(?:[\w.-]*\w)?))?$",
        )
        .field(
            "source",
            T::Str,
            "Entropy source: platform, seal or all; or the byte count.",
        )
        .field("urlbytes", T::Str, "Number of bytes, in the URL.")
        .field("bytes", T::Int, "Number of bytes to return (default 32).")
        .field(
            "format",
            T::Str,
            "Encoding of the result: base64 (default) or hex.",
        )
        .on(Op::Update, |b, r, d| Box::pin(b.tools_random(r, d))),
        P::new(r"tools/hash(?:/(?P<urlalgorithm>.+))?$")
            .field("input", T::Str, "Base64-encoded input data.")
            .field(
                "algorithm",
                T::Str,
                "sha2-224, sha2-256 (default), sha2-384 or sha2-512.",
            )
            .field("urlalgorithm", T::Str, "Algorithm, in the URL.")
            .field(
                "format",
                T::Str,
                "Encoding of the result: hex (default) or base64.",
            )
            .on(Op::Update, |b, r, d| Box::pin(b.tools_hash(r, d))),
    ]
}

fn is_source(s: &str) -> bool {
    matches!(s, "" | "platform" | "seal" | "all")
}

fn url_count(s: &str) -> Result<i64> {
    s.parse::<i64>().map_err(|_| {
        Error::bad(format!(
            "error parsing url-set byte count: strconv.Atoi: parsing {s:?}: invalid syntax"
        ))
    })
}

fn encode(bytes: &[u8], format: &str) -> String {
    if format == "hex" {
        hex::encode(bytes)
    } else {
        B64.encode(bytes)
    }
}

impl SystemBackend {
    async fn tools_random(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        // The source and the count may each come from the URL or the body, as in Vault, so that an
        // operator can write ACLs on either.
        let url_source = d.get_str("source")?.unwrap_or_default();
        let url_bytes = d.get_str("urlbytes")?.unwrap_or_default();
        let body_bytes = || -> Result<i64> { Ok(d.get_int("bytes")?.unwrap_or(32)) };
        let (source, count) = if url_source.is_empty() {
            (String::from("platform"), body_bytes()?)
        } else if url_bytes.is_empty() && is_source(&url_source) {
            (url_source, body_bytes()?)
        } else if url_bytes.is_empty() {
            (String::from("platform"), url_count(&url_source)?)
        } else {
            (url_source, url_count(&url_bytes)?)
        };
        let format = d.get_str("format")?.unwrap_or_else(|| "base64".into());
        if count < 1 {
            return Err(Error::bad("'bytes' cannot be less than 1"));
        }
        if count > MAX_RANDOM_BYTES {
            return Err(Error::bad(format!(
                "'bytes' should be less than {MAX_RANDOM_BYTES}"
            )));
        }
        if format != "hex" && format != "base64" {
            return Err(Error::bad(format!(
                "unsupported encoding format {format:?}; must be \"hex\" or \"base64\""
            )));
        }
        let mut warning = None;
        match source.as_str() {
            "platform" | "all" => {}
            // Coffer has no seal with its own entropy (no HSM): the platform source serves, as Vault
            // does with a Shamir seal, with the same warning.
            "seal" => {
                warning =
                    Some("no seal/entropy augmentation available, using platform entropy source")
            }
            other => {
                return Err(Error::bad(format!(
                    "unsupported entropy source {other:?}; must be \"platform\" or \"seal\", or \"all\""
                )));
            }
        }
        let len =
            usize::try_from(count).map_err(|_| Error::bad("'bytes' cannot be less than 1"))?;
        let mut buf = vec![0u8; len];
        rand::rngs::OsRng.fill_bytes(&mut buf);
        let mut data = Map::new();
        data.insert("random_bytes".into(), json!(encode(&buf, &format)));
        let resp = Response::data(data);
        Ok(Some(match warning {
            Some(w) => resp.with_warning(w),
            None => resp,
        }))
    }

    async fn tools_hash(&self, _req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let input = d.get_str("input")?.unwrap_or_default();
        let format = d.get_str("format")?.unwrap_or_else(|| "hex".into());
        let algorithm = match d.get_str("urlalgorithm")?.filter(|a| !a.is_empty()) {
            Some(a) => a,
            None => d.get_str("algorithm")?.unwrap_or_else(|| "sha2-256".into()),
        };
        let input = B64.decode(input.as_bytes()).map_err(|e| {
            // Go names the offending byte, or the start of an incomplete last quantum.
            let at = match e {
                base64::DecodeError::InvalidByte(at, _)
                | base64::DecodeError::InvalidLastSymbol(at, _) => at,
                base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
                    input.len() / 4 * 4
                }
            };
            Error::bad(format!(
                "unable to decode input as base64: illegal base64 data at input byte {at}"
            ))
        })?;
        if format != "hex" && format != "base64" {
            return Err(Error::bad(format!(
                "unsupported encoding format {format}; must be \"hex\" or \"base64\""
            )));
        }
        let sum = match algorithm.as_str() {
            "sha2-224" => sha2::Sha224::digest(&input).to_vec(),
            "sha2-256" => sha2::Sha256::digest(&input).to_vec(),
            "sha2-384" => sha2::Sha384::digest(&input).to_vec(),
            "sha2-512" => sha2::Sha512::digest(&input).to_vec(),
            other => return Err(Error::bad(format!("unsupported algorithm {other}"))),
        };
        let mut data = Map::new();
        data.insert("sum".into(), json!(encode(&sum, &format)));
        Ok(Some(Response::data(data)))
    }
}
