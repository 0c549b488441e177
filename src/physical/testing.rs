//! The conformance suite every storage engine runs (after OpenBao's `ExerciseBackend`).

use super::{PhysicalBackend, WriteOp};

/// Exercises get/put/delete/list/batch semantics; panics (in tests) on any deviation.
pub async fn exercise_backend(b: &dyn PhysicalBackend) {
    assert_eq!(b.get("foo").await.unwrap(), None);
    assert!(b.list("").await.unwrap().is_empty());
    b.delete("foo").await.unwrap();

    b.put("foo", b"bar".to_vec()).await.unwrap();
    assert_eq!(b.get("foo").await.unwrap().as_deref(), Some(&b"bar"[..]));
    b.put("foo", b"baz".to_vec()).await.unwrap();
    assert_eq!(b.get("foo").await.unwrap().as_deref(), Some(&b"baz"[..]));

    b.put("foo/bar", b"1".to_vec()).await.unwrap();
    b.put("foo/baz/qux", b"2".to_vec()).await.unwrap();
    b.put("foo/baz/quux", b"3".to_vec()).await.unwrap();
    b.put("fooz", b"4".to_vec()).await.unwrap();
    assert_eq!(b.list("").await.unwrap(), ["foo", "foo/", "fooz"]);
    assert_eq!(b.list("foo/").await.unwrap(), ["bar", "baz/"]);
    assert_eq!(b.list("foo/baz/").await.unwrap(), ["quux", "qux"]);
    assert!(b.list("nope/").await.unwrap().is_empty());

    b.delete("foo/baz/qux").await.unwrap();
    b.delete("foo/baz/quux").await.unwrap();
    assert_eq!(b.list("foo/").await.unwrap(), ["bar"]);

    b.write_batch(vec![
        WriteOp::Put("batch/a".into(), b"a".to_vec()),
        WriteOp::Put("batch/b".into(), b"b".to_vec()),
        WriteOp::Delete("fooz".into()),
    ])
    .await
    .unwrap();
    assert_eq!(b.list("batch/").await.unwrap(), ["a", "b"]);
    assert_eq!(b.get("fooz").await.unwrap(), None);

    // Bounded ordered scans (recursive, full keys).
    b.put("scan/b/2", b"x".to_vec()).await.unwrap();
    b.put("scan/a", b"x".to_vec()).await.unwrap();
    b.put("scan/b/1", b"x".to_vec()).await.unwrap();
    b.put("scan/c", b"x".to_vec()).await.unwrap();
    assert_eq!(
        b.scan("scan/", 10).await.unwrap(),
        ["scan/a", "scan/b/1", "scan/b/2", "scan/c"]
    );
    assert_eq!(b.scan("scan/", 2).await.unwrap(), ["scan/a", "scan/b/1"]);
    assert!(b.scan("nothing/", 5).await.unwrap().is_empty());

    // Binary values round-trip.
    let bin: Vec<u8> = (0..=255).collect();
    b.put("bin", bin.clone()).await.unwrap();
    assert_eq!(b.get("bin").await.unwrap(), Some(bin));
}
