//! Machines and device groups over HTTP.

use crate::harness::{Server, assert_mde_error, backends, seed_alerts, seed_machine};

#[tokio::test]
async fn machines_are_found_by_id_name_ip_and_tag_and_keep_analyst_changes() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let web = seed_machine(&b, &s.tenant, "web-1.corp.example").await;
        let db = seed_machine(&b, &s.tenant, "db-1.corp.example").await;
        let read = s.token_with("Machine.Read.All").await;
        let write = s.token_with("Machine.ReadWrite.All").await;

        let (st, list) = s
            .get(
                "/api/machines?$filter=osPlatform eq 'Linux'&$orderby=computerDnsName",
                Some(&read),
            )
            .await;
        assert_eq!(st, 200, "{}: {list}", b.name);
        let names: Vec<&str> = list["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["computerDnsName"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["db-1.corp.example", "web-1.corp.example"]);
        assert!(
            list["@odata.context"]
                .as_str()
                .unwrap()
                .ends_with("#Machines")
        );

        for key in [web.id.as_str(), "web-1.corp.example", "WEB-1", "web-1"] {
            let (st, m) = s.get(&format!("/api/machines/{key}"), Some(&read)).await;
            assert_eq!(
                (st, m["id"].as_str()),
                (200, Some(web.id.as_str())),
                "{key}"
            );
        }
        let (st, body) = s.get("/api/machines/nope-host", Some(&read)).await;
        assert_eq!(st, 404);
        assert_mde_error(&body, "ResourceNotFound");

        // findbyip answers from the address history, within ±15 minutes, for the past 30 days.
        let now = rampart_core::timefmt::format(time::OffsetDateTime::now_utc());
        let (st, found) = s
            .get(
                &format!("/api/machines/findbyip(ip='10.1.2.3',timestamp={now})"),
                Some(&read),
            )
            .await;
        assert_eq!(st, 200, "{found}");
        assert_eq!(found["value"].as_array().unwrap().len(), 2);
        let old = rampart_core::timefmt::format(
            time::OffsetDateTime::now_utc() - time::Duration::days(40),
        );
        let (st, body) = s
            .get(
                &format!("/api/machines/findbyip(ip='10.1.2.3',timestamp={old})"),
                Some(&read),
            )
            .await;
        assert_eq!(st, 400, "{body}");
        let (st, _) = s
            .get(
                &format!("/api/machines/findbyip(ip='not-an-ip',timestamp={now})"),
                Some(&read),
            )
            .await;
        assert_eq!(st, 400);

        // Tags: add, remove, find; the sensor's next report keeps them.
        let tag = |id: &str, value: &str, action: &str| {
            let req = s
                .http
                .post(format!("{}/api/machines/{id}/tags", s.url))
                .bearer_auth(&write)
                .json(&serde_json::json!({"Value": value, "Action": action}));
            async move {
                let r = req.send().await.unwrap();
                (
                    r.status().as_u16(),
                    r.json::<serde_json::Value>().await.unwrap(),
                )
            }
        };
        let (st, m) = tag(&web.id, "PCI", "Add").await;
        assert_eq!(
            (st, m["machineTags"].clone()),
            (200, serde_json::json!(["PCI"]))
        );
        tag(&web.id, "PCI", "Add").await;
        tag(&db.id, "PCI-scope", "Add").await;
        let (st, bad) = tag(&web.id, "x", "Toggle").await;
        assert_eq!(st, 400);
        assert_mde_error(&bad, "InvalidRequestBody");
        let (_, exact) = s.get("/api/machines/findbytag?tag=PCI", Some(&read)).await;
        assert_eq!(exact["value"].as_array().unwrap().len(), 1);
        let (_, prefix) = s
            .get(
                "/api/machines/findbytag?tag=PCI&useStartsWithFilter=true",
                Some(&read),
            )
            .await;
        assert_eq!(prefix["value"].as_array().unwrap().len(), 2);
        let (_, any) = s
            .get(
                "/api/machines?$filter=machineTags/any(t: t eq 'PCI-scope')",
                Some(&read),
            )
            .await;
        assert_eq!(any["value"][0]["id"], db.id);

        seed_machine(&b, &s.tenant, "web-1.corp.example").await;
        let (_, again) = s
            .get(&format!("/api/machines/{}", web.id), Some(&read))
            .await;
        assert_eq!(
            again["machineTags"],
            serde_json::json!(["PCI"]),
            "a sensor report keeps analyst tags"
        );

        // PATCH replaces tags and sets the device value; setDeviceValue too; many at once.
        let r = s
            .http
            .patch(format!("{}/api/machines/{}", s.url, web.id))
            .bearer_auth(&write)
            .json(&serde_json::json!({"machineTags": ["a", "b"], "deviceValue": "High"}))
            .send()
            .await
            .unwrap();
        let m: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            (m["machineTags"].clone(), m["deviceValue"].as_str()),
            (serde_json::json!(["a", "b"]), Some("High"))
        );
        let r = s
            .http
            .post(format!("{}/api/machines/{}/setDeviceValue", s.url, web.id))
            .bearer_auth(&write)
            .json(&serde_json::json!({"DeviceValue": "Low"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["deviceValue"],
            "Low"
        );
        let r = s.http.post(format!("{}/api/machines/AddOrRemoveTagForMultipleMachines", s.url)).bearer_auth(&write)
            .json(&serde_json::json!({"Value": "wave-1", "Action": "Add", "MachineIds": [web.id, db.id]})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let (_, tagged) = s
            .get("/api/machines/findbytag?tag=wave-1", Some(&read))
            .await;
        assert_eq!(tagged["value"].as_array().unwrap().len(), 2);
        let r = s.http.post(format!("{}/api/machines/AddOrRemoveTagForMultipleMachines", s.url)).bearer_auth(&write)
            .json(&serde_json::json!({"Value": "wave-2", "Action": "Add", "MachineIds": [web.id, "0000000000000000000000000000000000000000"]})).send().await.unwrap();
        assert_eq!(r.status(), 404, "all or nothing");
        let (_, none) = s
            .get("/api/machines/findbytag?tag=wave-2", Some(&read))
            .await;
        assert_eq!(none["value"].as_array().unwrap().len(), 0);

        // A machine's alerts.
        seed_alerts(&b, &s.tenant, 0, 40).await;
        let (st, _) = s
            .get(
                &format!("/api/machines/{}/alerts", web.id),
                Some(&s.token_with("Alert.Read.All").await),
            )
            .await;
        assert_eq!(st, 200);
        let (st, users) = s
            .get(
                &format!("/api/machines/{}/logonusers", web.id),
                Some(&s.token_with("User.Read.All").await),
            )
            .await;
        assert_eq!(
            (st, users["value"].as_array().map(Vec::len)),
            (200, Some(0))
        );
    }
}

#[tokio::test]
async fn device_groups_assign_machines_by_ordered_rules() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let web = seed_machine(&b, &s.tenant, "web-7.corp.example").await;
        let other = seed_machine(&b, &s.tenant, "build.lab.example").await;
        let admin = s.token_with("SecurityConfiguration.ReadWrite.All").await;
        let read = s.token_with("Machine.Read.All").await;
        let create = |body: serde_json::Value| {
            let req = s
                .http
                .post(format!("{}/api/machinegroups", s.url))
                .bearer_auth(&admin)
                .json(&body);
            async move {
                let r = req.send().await.unwrap();
                (
                    r.status().as_u16(),
                    r.json::<serde_json::Value>().await.unwrap(),
                )
            }
        };
        let (st, web_group) = create(serde_json::json!({"name": "Web", "rank": 1, "rules": [{"kind": "NamePattern", "value": "web-*"}], "automationLevel": "SemiApprovalAllFolders"})).await;
        assert_eq!(st, 201, "{}: {web_group}", b.name);
        let (st, _) = create(serde_json::json!({"name": "Corp", "rank": 2, "rules": [{"kind": "Domain", "value": "corp.example"}]})).await;
        assert_eq!(st, 201);
        let (st, dup) =
            create(serde_json::json!({"name": "Web", "rules": [{"kind": "Tag", "value": "x"}]}))
                .await;
        assert_eq!(st, 409, "{dup}");
        let (st, _) = create(serde_json::json!({"name": "Empty", "rules": []})).await;
        assert_eq!(st, 400);

        let (_, m) = s
            .get(&format!("/api/machines/{}", web.id), Some(&read))
            .await;
        assert_eq!(
            (m["rbacGroupName"].as_str(), m["rbacGroupId"].clone()),
            (Some("Web"), web_group["id"].clone())
        );
        let (_, m) = s
            .get(&format!("/api/machines/{}", other.id), Some(&read))
            .await;
        assert_eq!(
            (m["rbacGroupName"].clone(), m["rbacGroupId"].as_i64()),
            (serde_json::Value::Null, Some(0)),
            "ungrouped"
        );

        // Moving the Corp group in front takes the web server with it; deleting it gives it back.
        let gid = web_group["id"].as_i64().unwrap();
        let (_, groups) = s.get("/api/machinegroups", Some(&read)).await;
        let corp = groups["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "Corp")
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        let r = s
            .http
            .patch(format!("{}/api/machinegroups/{corp}", s.url))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"rank": 0}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (_, m) = s
            .get(&format!("/api/machines/{}", web.id), Some(&read))
            .await;
        assert_eq!(m["rbacGroupName"], "Corp");
        let r = s
            .http
            .delete(format!("{}/api/machinegroups/{corp}", s.url))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let (_, m) = s
            .get(&format!("/api/machines/{}", web.id), Some(&read))
            .await;
        assert_eq!(m["rbacGroupId"].as_i64(), Some(gid));
        let (st, _) = s
            .get(&format!("/api/machinegroups/{corp}"), Some(&read))
            .await;
        assert_eq!(st, 404);
    }
}

#[tokio::test]
async fn machines_that_stop_reporting_become_inactive() {
    use rampart_store::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start(&b);
        let store = b.store().await;
        let tenant: rampart_core::TenantId = s.tenant.parse().unwrap();
        let now = time::OffsetDateTime::now_utc();
        let ctx = rampart_core::audit::AuditContext::system("test");
        let quiet = rampart_core::machine::Machine::new(
            "ab".repeat(20),
            "quiet.corp.example".into(),
            "Linux".into(),
            now - time::Duration::days(8),
        );
        store.report_machine(&ctx, tenant, &quiet).await.unwrap();
        let fresh = rampart_core::machine::Machine::new(
            "cd".repeat(20),
            "fresh.corp.example".into(),
            "Linux".into(),
            now,
        );
        store.report_machine(&ctx, tenant, &fresh).await.unwrap();
        // Reported eight days late, the quiet machine is inactive from the start.
        let read = s.token_with("Machine.Read.All").await;
        let (_, m) = s
            .get(&format!("/api/machines/{}", "ab".repeat(20)), Some(&read))
            .await;
        assert_eq!(m["healthStatus"], "Inactive", "{}", b.name);
        // A week and a day on, the fresh one goes quiet too.
        assert_eq!(
            store
                .refresh_machine_health(now + time::Duration::days(8))
                .await
                .unwrap(),
            1
        );
        let (_, m) = s
            .get(&format!("/api/machines/{}", "cd".repeat(20)), Some(&read))
            .await;
        assert_eq!(m["healthStatus"], "Inactive");
        let (_, active) = s
            .get(
                "/api/machines?$filter=healthStatus eq 'Active'",
                Some(&read),
            )
            .await;
        assert_eq!(active["value"].as_array().unwrap().len(), 0);
    }
}
