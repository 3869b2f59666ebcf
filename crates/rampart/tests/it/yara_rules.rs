//! `/api/yararules`: rule sets checked with the agents' YARA engine before they are stored,
//! listed, changed and deleted on both stores, and handed to agents with their indicators.

use crate::harness::{Server, assert_mde_error, backends};
use serde_json::json;

const RULES: &str = r#"
rule Marker_One { strings: $a = "RAMPART-ONE" condition: $a }
rule Marker_Two { strings: $b = { 52 41 4D 50 } condition: $b at 0 }
"#;

#[tokio::test]
async fn rule_sets_are_checked_stored_changed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let rw = s.token_with("Ti.ReadWrite.All").await;
        let ro = s.token_with("Ti.Read.All").await;
        let other = s.token_with("Alert.Read.All").await;

        let (st, v) = s
            .send(
                "POST",
                "/api/yararules",
                &rw,
                Some(json!({"name": "markers", "source": RULES})),
            )
            .await;
        assert_eq!(st, 201, "{}: {v}", b.name);
        let id = v["id"].as_str().unwrap().to_owned();
        assert_eq!(v["ruleNames"], json!(["Marker_One", "Marker_Two"]));
        assert_eq!(v["name"], "markers");

        // What does not compile, what reads the server's disk, and what is missing: 400 with
        // the reason, and nothing stored.
        for (body, code, says) in [
            (
                json!({"name": "bad", "source": "rule x { condition: }"}),
                "InvalidRequestBody",
                "do not compile",
            ),
            (
                json!({"name": "inc", "source": "include \"/etc/passwd\""}),
                "InvalidRequestBody",
                "do not compile",
            ),
            (
                json!({"name": "empty", "source": "  "}),
                "InvalidRequestBody",
                "empty",
            ),
            (
                json!({"name": "none", "source": "import \"elf\""}),
                "InvalidRequestBody",
                "no rule",
            ),
            (json!({"source": RULES}), "MissingRequiredParameter", "name"),
            (
                json!({"name": "x", "source": RULES, "enabled": true}),
                "InvalidRequestBody",
                "enabled",
            ),
        ] {
            let (st, v) = s
                .send("POST", "/api/yararules", &rw, Some(body.clone()))
                .await;
            assert_eq!(st, 400, "{body}: {v}");
            let message = assert_mde_error(&v, code);
            assert!(message.contains(says), "{body}: {message}");
        }
        let (st, v) = s
            .send(
                "POST",
                "/api/yararules",
                &ro,
                Some(json!({"name": "r", "source": RULES})),
            )
            .await;
        assert_eq!(st, 403, "{v}");

        let (st, list) = s
            .send("GET", "/api/yararules?$filter=name eq 'markers'", &ro, None)
            .await;
        assert_eq!(st, 200, "{list}");
        assert_eq!(list["value"].as_array().unwrap().len(), 1);
        let (st, _) = s.send("GET", "/api/yararules", &other, None).await;
        assert_eq!(st, 403);

        let (st, v) = s
            .send(
                "PATCH",
                &format!("/api/yararules/{id}"),
                &rw,
                Some(json!({"source": "rule Only { strings: $a = \"x\" condition: $a }"})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["ruleNames"], json!(["Only"]));
        assert_eq!(v["name"], "markers");
        let (st, v) = s
            .send(
                "PATCH",
                &format!("/api/yararules/{id}"),
                &rw,
                Some(json!({"source": "rule {"})),
            )
            .await;
        assert_eq!(st, 400, "{v}");
        let (_, v) = s
            .send("GET", &format!("/api/yararules/{id}"), &ro, None)
            .await;
        assert_eq!(
            v["ruleNames"],
            json!(["Only"]),
            "a refused change leaves the set as it was"
        );

        let (st, _) = s
            .send("DELETE", &format!("/api/yararules/{id}"), &rw, None)
            .await;
        assert_eq!(st, 204);
        let (st, v) = s
            .send("GET", &format!("/api/yararules/{id}"), &ro, None)
            .await;
        assert_eq!(st, 404, "{v}");
        assert_mde_error(&v, "ResourceNotFound");
        let (st, _) = s
            .send("DELETE", &format!("/api/yararules/{id}"), &rw, None)
            .await;
        assert_eq!(st, 404);
    }
}

/// A rule set of `tenant`, stored directly; its id.
pub async fn seed_yara_rule_set(backend: &crate::harness::Backend, tenant: &str) -> String {
    use rampart_store::prelude::*;
    let store = backend.store().await;
    let now = time::OffsetDateTime::now_utc();
    let set = rampart_core::yara_rule::YaraRuleSet {
        id: String::new(),
        name: "seeded".into(),
        description: None,
        source: RULES.into(),
        rule_names: vec!["Marker_One".into(), "Marker_Two".into()],
        created_by: "test-seed".into(),
        created_date_time: now,
        last_modified_by: "test-seed".into(),
        last_modified_date_time: now,
    };
    store
        .create_yara_rule_set(
            &rampart_core::audit::AuditContext::system("test-seed"),
            tenant.parse().unwrap(),
            set,
        )
        .await
        .unwrap()
        .id
}
