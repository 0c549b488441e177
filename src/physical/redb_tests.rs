//! redb engine tests: conformance, reopen, concurrent writers and group commit, list seeking.

use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::physical::inmem::InmemBackend;
use crate::physical::testing::exercise_backend;

#[tokio::test]
async fn redb_conforms() {
    exercise_backend(&RedbBackend::temp().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn reopen_after_drop_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.redb");
    {
        let b = RedbBackend::open(&path).unwrap();
        b.put("sys/token/id/a", b"token".to_vec()).await.unwrap();
        b.write_batch(vec![
            WriteOp::Put("logical/x/1".into(), b"one".to_vec()),
            WriteOp::Put("logical/x/2".into(), b"two".to_vec()),
        ])
        .await
        .unwrap();
        b.delete("logical/x/2").await.unwrap();
    }
    let b = RedbBackend::open(&path).unwrap();
    assert_eq!(b.get("sys/token/id/a").await.unwrap().unwrap(), b"token");
    assert_eq!(b.list("logical/x/").await.unwrap(), ["1"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn second_open_of_same_file_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.redb");
    let _first = RedbBackend::open(&path).unwrap();
    let err = RedbBackend::open(&path).unwrap_err();
    assert!(err.to_string().starts_with("redb: opening"), "{err}");
}

/// 200 tasks write at once: every write lands and is visible, and group commit folds them into
/// far fewer fsyncs than writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_commits() {
    const WRITERS: usize = 200;
    let b = Arc::new(RedbBackend::temp().unwrap());
    let start = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let began = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (b, start) = (b.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                b.put(&format!("c/{i:03}"), format!("v{i}").into_bytes())
                    .await
                    .unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = began.elapsed();
    let stats = b.stats();
    println!(
        "{WRITERS} concurrent puts: {} commits ({:.1} writes/commit) in {elapsed:?}",
        stats.commits,
        WRITERS as f64 / stats.commits as f64
    );
    assert_eq!(stats.batches, WRITERS as u64);
    assert!(
        stats.commits * 4 <= WRITERS as u64,
        "group commit should fold writes: {stats:?}"
    );
    let keys = b.list("c/").await.unwrap();
    assert_eq!(keys.len(), WRITERS);
    for i in 0..WRITERS {
        let v = b.get(&format!("c/{i:03}")).await.unwrap().unwrap();
        assert_eq!(v, format!("v{i}").into_bytes());
    }
}

/// The seeking list and the bounded range scan agree with the in-memory engine on a random tree.
#[tokio::test]
async fn list_matches_inmem_on_random_tree() {
    use rand::Rng;
    let redb = RedbBackend::temp().unwrap();
    let inmem = InmemBackend::new();
    let mut rng = rand::thread_rng();
    let seg = ["a", "a-b", "a.b", "ab", "b", "z", "0", "a/"];
    let mut ops = Vec::new();
    let mut folders = std::collections::BTreeSet::from([String::new()]);
    for _ in 0..400 {
        let depth = rng.gen_range(1..=4);
        let mut key = String::new();
        for d in 0..depth {
            let s = seg[rng.gen_range(0..seg.len())].trim_end_matches('/');
            key.push_str(s);
            if d + 1 < depth {
                key.push('/');
                folders.insert(key.clone());
            }
        }
        ops.push(WriteOp::Put(key, vec![1]));
    }
    redb.write_batch(ops.clone()).await.unwrap();
    inmem.write_batch(ops).await.unwrap();
    for prefix in folders
        .iter()
        .map(String::as_str)
        .chain(["a", "a-", "nope/"])
    {
        assert_eq!(
            redb.list(prefix).await.unwrap(),
            inmem.list(prefix).await.unwrap(),
            "prefix {prefix:?}"
        );
        for limit in [0, 1, 3, 1000] {
            assert_eq!(
                redb.scan(prefix, limit).await.unwrap(),
                inmem.scan(prefix, limit).await.unwrap(),
                "scan {prefix:?} limit {limit}"
            );
        }
    }
}

/// Measures durable write throughput on this machine (run with `--run-ignored all`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; prints numbers"]
async fn durable_put_throughput() {
    let b = Arc::new(RedbBackend::temp().unwrap());
    let value = vec![7u8; 256];
    let n = 200;
    let began = Instant::now();
    for i in 0..n {
        b.put(&format!("seq/{i}"), value.clone()).await.unwrap();
    }
    let seq = began.elapsed();
    println!(
        "sequential: {n} durable puts in {seq:?} ({:.0} puts/s, {:?}/put)",
        f64::from(n) / seq.as_secs_f64(),
        seq / n
    );

    let before = b.stats();
    let (writers, per) = (200, 50);
    let began = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (b, value) = (b.clone(), value.clone());
            tokio::spawn(async move {
                for i in 0..per {
                    b.put(&format!("par/{w}/{i}"), value.clone()).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let par = began.elapsed();
    let commits = b.stats().commits - before.commits;
    let total = writers * per;
    println!(
        "{writers} writers x {per}: {total} durable puts in {par:?} ({:.0} puts/s), \
         {commits} commits ({:.1} writes/commit)",
        f64::from(total) / par.as_secs_f64(),
        f64::from(total) / commits as f64
    );
}

const CRASH_ENV: &str = "COFFER_REDB_CRASH_CHILD";

/// The child half of `sigkill_keeps_acknowledged_writes`: writes from 16 tasks forever and
/// prints each key once its write is acknowledged. Does nothing unless started by the parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of sigkill_keeps_acknowledged_writes"]
async fn crash_child() {
    let Ok(path) = std::env::var(CRASH_ENV) else {
        return;
    };
    let b = Arc::new(RedbBackend::open(std::path::Path::new(&path)).unwrap());
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let b = b.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("crash/{t}/{i}");
                    b.put(&key, key.clone().into_bytes()).await.unwrap();
                    println!("ack {key}");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// SIGKILL in the middle of a stream of acknowledged writes: the file opens (redb repairs it),
/// passes the full integrity check, and every acknowledged write is there.
#[test]
fn sigkill_keeps_acknowledged_writes() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.redb");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "physical::redb::tests::crash_child",
            "--exact",
            "--nocapture",
        ])
        .arg("--include-ignored")
        .env(CRASH_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if let Some(key) = line.unwrap().strip_prefix("ack ") {
            acked.push(key.to_string());
            if acked.len() == 500 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert_eq!(acked.len(), 500, "child stopped early");

    // The repaired file passes redb's full page-by-page check.
    let mut raw = redb::Database::open(&path).unwrap();
    assert!(raw.check_integrity().unwrap(), "integrity check failed");
    drop(raw);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let b = RedbBackend::open(&path).unwrap();
        for key in &acked {
            let v = b.get(key).await.unwrap();
            assert_eq!(
                v.as_deref(),
                Some(key.as_bytes()),
                "acknowledged write {key} lost"
            );
        }
        b.put("after/crash", b"ok".to_vec()).await.unwrap();
    });
}
