//! The conformance suite every storage engine runs (after OpenBao's `ExerciseBackend`).
//!
//! It is ordinary library code, not `#[cfg(test)]`, so that any engine — an in-crate one, the
//! barrier over one, or one tested from the integration binary against a real database — runs
//! the very same cases. Each case returns a description of the first deviation instead of
//! panicking; tests unwrap it.

use super::{PhysicalBackend, StorageError, WriteOp};

/// The first way an engine deviated from the contract.
pub type Deviation = String;

fn io(what: &str, e: StorageError) -> Deviation {
    format!("{what}: storage error: {e}")
}

/// Fails with `what` when `got != want`.
fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), Deviation> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

async fn get(b: &dyn PhysicalBackend, key: &str) -> Result<Option<Vec<u8>>, Deviation> {
    b.get(key).await.map_err(|e| io(&format!("get {key}"), e))
}

async fn put(b: &dyn PhysicalBackend, key: &str, value: &[u8]) -> Result<(), Deviation> {
    b.put(key, value.to_vec())
        .await
        .map_err(|e| io(&format!("put {key}"), e))
}

async fn delete(b: &dyn PhysicalBackend, key: &str) -> Result<(), Deviation> {
    b.delete(key)
        .await
        .map_err(|e| io(&format!("delete {key}"), e))
}

async fn list(b: &dyn PhysicalBackend, prefix: &str) -> Result<Vec<String>, Deviation> {
    b.list(prefix)
        .await
        .map_err(|e| io(&format!("list {prefix:?}"), e))
}

async fn scan(b: &dyn PhysicalBackend, prefix: &str, n: usize) -> Result<Vec<String>, Deviation> {
    b.scan(prefix, n)
        .await
        .map_err(|e| io(&format!("scan {prefix:?}"), e))
}

/// Get/put/delete/list/batch/scan semantics on an empty engine (or an empty prefixed view).
pub async fn exercise_backend(b: &dyn PhysicalBackend) -> Result<(), Deviation> {
    expect("get of a missing key", get(b, "foo").await?, None)?;
    expect(
        "list of an empty store",
        list(b, "").await?,
        Vec::<String>::new(),
    )?;
    delete(b, "foo").await?; // deleting a missing key is not an error

    put(b, "foo", b"bar").await?;
    expect("get after put", get(b, "foo").await?, Some(b"bar".to_vec()))?;
    put(b, "foo", b"baz").await?;
    expect(
        "get after overwrite",
        get(b, "foo").await?,
        Some(b"baz".to_vec()),
    )?;

    put(b, "foo/bar", b"1").await?;
    put(b, "foo/baz/qux", b"2").await?;
    put(b, "foo/baz/quux", b"3").await?;
    put(b, "fooz", b"4").await?;
    expect(
        "list root",
        list(b, "").await?,
        vec!["foo", "foo/", "fooz"]
            .into_iter()
            .map(String::from)
            .collect(),
    )?;
    expect(
        "list foo/",
        list(b, "foo/").await?,
        vec!["bar".to_string(), "baz/".to_string()],
    )?;
    expect(
        "list foo/baz/",
        list(b, "foo/baz/").await?,
        vec!["quux".to_string(), "qux".to_string()],
    )?;
    expect(
        "list of a missing folder",
        list(b, "nope/").await?,
        Vec::<String>::new(),
    )?;

    delete(b, "foo/baz/qux").await?;
    delete(b, "foo/baz/quux").await?;
    expect(
        "list after deleting a folder's keys",
        list(b, "foo/").await?,
        vec!["bar".to_string()],
    )?;

    b.write_batch(vec![
        WriteOp::Put("batch/a".into(), b"a".to_vec()),
        WriteOp::Put("batch/b".into(), b"b".to_vec()),
        WriteOp::Delete("fooz".into()),
    ])
    .await
    .map_err(|e| io("write_batch", e))?;
    expect(
        "list after batch",
        list(b, "batch/").await?,
        vec!["a".to_string(), "b".to_string()],
    )?;
    expect("get of a key a batch deleted", get(b, "fooz").await?, None)?;

    // Bounded ordered scans (recursive, full keys).
    for k in ["scan/b/2", "scan/a", "scan/b/1", "scan/c"] {
        put(b, k, b"x").await?;
    }
    expect(
        "scan",
        scan(b, "scan/", 10).await?,
        ["scan/a", "scan/b/1", "scan/b/2", "scan/c"]
            .map(String::from)
            .to_vec(),
    )?;
    expect(
        "bounded scan",
        scan(b, "scan/", 2).await?,
        ["scan/a", "scan/b/1"].map(String::from).to_vec(),
    )?;
    expect(
        "scan of a missing prefix",
        scan(b, "nothing/", 5).await?,
        Vec::<String>::new(),
    )?;

    // Binary and empty values round-trip.
    let bin: Vec<u8> = (0..=255).collect();
    put(b, "bin", &bin).await?;
    expect("binary value", get(b, "bin").await?, Some(bin))?;
    put(b, "empty", b"").await?;
    expect("empty value", get(b, "empty").await?, Some(Vec::new()))?;
    exercise_list_prefix(b).await
}

/// Listing is exact: characters that are wildcards in SQL `LIKE` (`_`, `%`) or special elsewhere
/// never widen a prefix, and keys are compared byte-wise.
pub async fn exercise_list_prefix(b: &dyn PhysicalBackend) -> Result<(), Deviation> {
    for k in [
        "lp/a_b/1",
        "lp/axb/2",
        "lp/a%b/3",
        "lp/a%/4",
        "lp/a\\b/5",
        "lp/é/6",
    ] {
        put(b, k, b"v").await?;
    }
    expect(
        "list with '_' in the prefix",
        list(b, "lp/a_b/").await?,
        vec!["1".to_string()],
    )?;
    expect(
        "list with '%' in the prefix",
        list(b, "lp/a%b/").await?,
        vec!["3".to_string()],
    )?;
    expect(
        "list with '%' at the end of a segment",
        list(b, "lp/a%/").await?,
        vec!["4".to_string()],
    )?;
    expect(
        "list with '\\' in the prefix",
        list(b, "lp/a\\b/").await?,
        vec!["5".to_string()],
    )?;
    expect(
        "list with a non-ASCII segment",
        list(b, "lp/é/").await?,
        vec!["6".to_string()],
    )?;
    expect(
        "scan with '_' in the prefix",
        scan(b, "lp/a_", 10).await?,
        vec!["lp/a_b/1".to_string()],
    )?;
    Ok(())
}
