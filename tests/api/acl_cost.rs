//! ACL evaluation cost: `sys/capabilities-self` with one very long path must not burn CPU in
//! proportion to the square of the path length (issue 12 §4). Any token with the `default` policy
//! can reach that endpoint, so the evaluator must stay linear in the path length.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::TestServer;

/// A policy with many segment-wildcard and prefix rules, so every evaluator stage has work to do.
fn many_rules() -> String {
    let mut hcl = String::new();
    for i in 0..100 {
        hcl.push_str(&format!(
            "path \"secret/{i}/+/x/*\" {{ capabilities = [\"read\"] }}\n\
             path \"+/a/+/{i}\" {{ capabilities = [\"list\"] }}\n\
             path \"secret/a/a/{i}*\" {{ capabilities = [\"update\"] }}\n\
             path \"secret/{i}/a/\" {{ capabilities = [\"create\"] }}\n"
        ));
    }
    hcl.push_str("path \"secret/*\" { capabilities = [\"read\"] }\n");
    hcl.push_str("path \"secret/a/+/a/*\" { capabilities = [\"deny\"] }\n");
    hcl
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn capabilities_self_on_a_200k_path_is_fast() {
    let srv = TestServer::start().await;
    srv.write_policy("many", &many_rules()).await;
    let tok = srv.token_with(&["many"], json!({})).await;
    let plain_tok = srv.token_with(&["default"], json!({})).await;
    // 200 KB: a long run of one-letter segments, then the same with no slash at all.
    let segmented = format!("secret/{}", "a/".repeat(100_000));
    let flat = format!("secret/{}", "a".repeat(200_000));
    let start = Instant::now();
    for (t, path, expected) in [
        (&tok, &segmented, json!(["deny"])),
        (&tok, &flat, json!(["read"])),
        (&plain_tok, &segmented, json!(["deny"])),
        (&plain_tok, &flat, json!(["deny"])),
    ] {
        let call = srv.post("sys/capabilities-self", t, json!({ "paths": [path] }));
        let r = tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("sys/capabilities-self on a 200 KB path took over 5 s");
        r.assert_status(200);
        assert_eq!(r.body["data"]["capabilities"], expected);
        assert_eq!(r.body["data"][path.as_str()], expected);
    }
    eprintln!("4 capability checks on 200 KB paths: {:?}", start.elapsed());
}
