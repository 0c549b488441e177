//! kv-v2 `subkeys/<path>`: the structure of a version with every value replaced by `null`, down
//! to `depth` levels (0 = all), so a client can learn which keys exist without reading secrets.

use serde_json::Value;

use super::input::{self, weak_int};
use super::merge::remove_values;
use super::{KvBackend, P};
use crate::error::Result;
use crate::logical::{FieldData, FieldType as T, Operation as Op, Request, Response};

pub(super) fn paths() -> Vec<P> {
    vec![
        P::new(r"subkeys/(?P<path>.+)$")
            .field("path", T::Str, "Location of the secret.")
            .field("version", T::Raw, "Version to read; the latest when absent or 0.")
            .field("depth", T::Raw, "Maximum depth to traverse; 0 = no limit.")
            .on(Op::Read, |b, r, d| Box::pin(b.subkeys_read(r, d)))
            .help("Read the structure of a secret entry from the Key-Value store with the values removed."),
    ]
}

fn strip(depth: i64) -> impl Fn(Value) -> Value {
    move |v| match v {
        Value::Object(mut m) => {
            remove_values(&mut m, depth);
            Value::Object(m)
        }
        // A version written with `"data": null` has no structure to show.
        _ => Value::Null,
    }
}

impl KvBackend {
    async fn subkeys_read(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let version = input::parse(req, false, d.raw(), "version", weak_int)?.unwrap_or(0);
        let depth = input::parse(req, false, d.raw(), "depth", weak_int)?.unwrap_or(0);
        let key = d.get_str("path")?.unwrap_or_default();
        let render = strip(depth);
        let resp = self.read_version(req, &key, version, "subkeys").await?;
        Ok(resp.map(|mut r| {
            if r.status.is_none()
                && let Some(data) = r.data.as_mut()
                && let Some(sub) = data.get_mut("subkeys")
            {
                *sub = render(sub.take());
            }
            r
        }))
    }
}
