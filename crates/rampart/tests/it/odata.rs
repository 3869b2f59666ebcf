//! OData over HTTP: paging links that never loop or skip, and clear errors.

use crate::harness::{Server, assert_mde_error, backends, seed_alerts};

#[tokio::test]
async fn next_links_visit_every_row_once_even_while_rows_are_added() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let seeded = seed_alerts(&b, &s.tenant, 0, 700).await;
        let token = s.token_with("Alert.Read.All").await;
        let mut url = format!(
            "{}/api/alerts?$top=64&$orderby=alertCreationTime desc&$filter=status ne 'Resolved'&$count=true",
            s.url
        );
        let mut seen = Vec::new();
        let mut pages = 0;
        let mut count = None;
        loop {
            let v: serde_json::Value = s
                .http
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(
                v["@odata.context"]
                    .as_str()
                    .is_some_and(|c| c.ends_with("/api/$metadata#Alerts")),
                "{url}: {v}"
            );
            if pages == 0 {
                count = v["@odata.count"].as_i64();
            }
            for a in v["value"].as_array().unwrap() {
                seen.push((
                    a["alertCreationTime"].as_str().unwrap().to_owned(),
                    a["id"].as_str().unwrap().to_owned(),
                ));
                assert_eq!(a["evidence"], serde_json::json!([]));
            }
            pages += 1;
            // New alerts arrive while the client pages.
            if pages < 4 {
                seed_alerts(&b, &s.tenant, 10_000 + pages * 10, 10).await;
            }
            match v["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_owned(),
                None => break,
            }
            assert!(pages < 100, "paging loops");
        }
        let want: std::collections::BTreeSet<&str> = seeded
            .iter()
            .filter(|a| a.status != rampart_core::alert::AlertStatus::Resolved)
            .map(|a| a.id.as_str())
            .collect();
        let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
        let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{}: a row came twice", b.name);
        assert!(
            want.is_subset(&unique),
            "{}: a row present from the start was skipped",
            b.name
        );
        assert_eq!(count, Some(want.len() as i64));
        let times: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
        let parsed: Vec<_> = times
            .iter()
            .map(|t| rampart_core::timefmt::parse(t).unwrap())
            .collect();
        assert!(
            parsed.windows(2).all(|w| w[0] >= w[1]),
            "{}: descending order holds across pages",
            b.name
        );
    }
}

#[tokio::test]
async fn skip_select_and_top_work_and_bad_options_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    seed_alerts(b, &s.tenant, 0, 30).await;
    let token = s.token_with("Alert.Read.All").await;

    let (st, all) = s.get("/api/alerts?$orderby=id", Some(&token)).await;
    assert_eq!(st, 200);
    assert_eq!(all["value"].as_array().unwrap().len(), 30);
    assert!(all.get("@odata.nextLink").is_none());
    let (_, skipped) = s
        .get("/api/alerts?$orderby=id&$skip=10&$top=5", Some(&token))
        .await;
    let ids = |v: &serde_json::Value| {
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&skipped), ids(&all)[10..15].to_vec());
    assert!(
        skipped["@odata.nextLink"]
            .as_str()
            .is_some_and(|l| l.contains("$skiptoken=")),
        "a nextLink also when $top was given: {skipped}"
    );

    let (_, sel) = s
        .get("/api/alerts?$select=id,severity&$top=2", Some(&token))
        .await;
    for a in sel["value"].as_array().unwrap() {
        let keys: Vec<&String> = a.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "{a}");
    }

    for (query, must_name) in [
        ("$filter=severty eq 'High'", "severty"),
        ("$filter=severity eq 'Hihg'", "Hihg"),
        ("$filter=severity eq", "$filter"),
        ("$top=10001", "$top"),
        ("$top=abc", "$top"),
        ("$orderby=nope desc", "nope"),
        ("$frobnicate=1", "$frobnicate"),
        ("$expand=machine", "machine"),
        ("$select=notAField", "notAField"),
        ("$skiptoken=garbage", "$skiptoken"),
    ] {
        let (st, body) = s.get(&format!("/api/alerts?{query}"), Some(&token)).await;
        assert_eq!(st, 400, "{query}: {body}");
        let msg = assert_mde_error(&body, "ODataError");
        assert!(
            msg.contains(must_name),
            "{query}: message '{msg}' should name '{must_name}'"
        );
    }
}
