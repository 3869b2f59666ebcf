//! `/api/libraryfiles`: the live response library on both stores — uploaded as MDE's
//! multipart form, listed, replaced only when asked, deleted; refused with reasons; and what
//! live response sessions may name. (Sessions running on a real agent: `agent.rs`.)

use crate::harness::{Server, assert_mde_error, backends, seed_machine};
use serde_json::json;

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn library_files_are_uploaded_listed_replaced_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        let manage = s.token_with("Library.Manage").await;
        let other = s.token_with("Machine.LiveResponse,Machine.Read.All").await;
        let script = b"#!/bin/sh\necho hello \"$1\"\n";

        let (st, v) = s
            .upload_library_file(
                &manage,
                "Hello.sh",
                script,
                &[
                    ("Description", "says hello"),
                    ("HasParameters", "true"),
                    ("ParametersDescription", "a name"),
                ],
            )
            .await;
        assert_eq!(st, 200, "{}: {v}", b.name);
        assert_eq!(v["fileName"], "Hello.sh");
        assert_eq!(v["sha256"], sha256_hex(script));
        assert_eq!(v["description"], "says hello");
        assert_eq!(v["hasParameters"], true);
        assert_eq!(v["parametersDescription"], "a name");
        assert_eq!(v["size"], script.len());
        assert!(v["createdBy"].is_string() && v["creationTime"].is_string());
        let created = v["creationTime"].clone();

        // Larger than the JSON body limit (4 MiB by default): the library has its own.
        let big = vec![b'x'; 6 << 20];
        let (st, v) = s.upload_library_file(&manage, "big.bin", &big, &[]).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["size"], big.len());
        assert_eq!(v["hasParameters"], false);

        let (st, list) = s.get("/api/libraryfiles", Some(&manage)).await;
        assert_eq!(st, 200);
        assert!(
            list["@odata.context"]
                .as_str()
                .unwrap()
                .ends_with("#LibraryFiles")
        );
        let names: Vec<&str> = list["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["fileName"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Hello.sh", "big.bin"]);
        let (st, list) = s
            .get(
                "/api/libraryfiles?$filter=fileName eq 'big.bin'",
                Some(&manage),
            )
            .await;
        assert_eq!(st, 200);
        assert_eq!(list["value"].as_array().unwrap().len(), 1);

        // The same name (in any case) is refused unless the caller asks to replace it.
        let (st, e) = s
            .upload_library_file(&manage, "hello.SH", b"echo other\n", &[])
            .await;
        assert_eq!(st, 409, "{e}");
        assert!(assert_mde_error(&e, "Conflict").contains("OverrideIfExists"));
        let (st, v) = s
            .upload_library_file(
                &manage,
                "hello.SH",
                b"echo other\n",
                &[("OverrideIfExists", "true")],
            )
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["sha256"], sha256_hex(b"echo other\n"));
        assert_eq!(
            v["creationTime"], created,
            "a replaced file keeps its creation time"
        );
        let (st, v) = s.get("/api/libraryfiles/HELLO.sh", Some(&manage)).await;
        assert_eq!(st, 200);
        assert_eq!(v["sha256"], sha256_hex(b"echo other\n"));

        // Bad forms: each a 400 naming the problem, nothing stored.
        for (name, fields, code, says) in [
            ("../etc/passwd", vec![], "InvalidInput", "no path"),
            (
                "ok.sh",
                vec![("Colour", "blue")],
                "InvalidRequestBody",
                "Unknown form field",
            ),
            (
                "ok.sh",
                vec![("OverrideIfExists", "maybe")],
                "InvalidRequestBody",
                "true or false",
            ),
        ] {
            let (st, e) = s.upload_library_file(&manage, name, b"x", &fields).await;
            assert_eq!(st, 400, "{name} {fields:?}: {e}");
            assert!(assert_mde_error(&e, code).contains(says), "{e}");
        }
        let (st, e) = s.upload_library_file(&manage, "empty.sh", b"", &[]).await;
        assert_eq!(st, 400, "{e}");
        assert!(assert_mde_error(&e, "BadRequest").contains("empty"));
        let (st, e) = s
            .send(
                "POST",
                "/api/libraryfiles",
                &manage,
                Some(json!({"file": "x"})),
            )
            .await;
        assert_eq!(st, 400, "{e}");
        let (_, list) = s.get("/api/libraryfiles", Some(&manage)).await;
        assert_eq!(list["value"].as_array().unwrap().len(), 2);

        // Library.Manage is required.
        let (st, e) = s.upload_library_file(&other, "x.sh", b"x", &[]).await;
        assert_eq!(st, 403, "{e}");
        let (st, _) = s.get("/api/libraryfiles", Some(&other)).await;
        assert_eq!(st, 403);

        // Sessions may only name library files, and only on devices whose group allows
        // remediation.
        let m = seed_machine(&b, &s.tenant, "lr-host").await;
        let session = |name: &str| {
            json!({"Comment": "triage", "Commands": [
                {"type": "RunScript", "params": [{"key": "ScriptName", "value": name}]}]})
        };
        let (st, e) = s
            .post(
                &format!("/api/machines/{}/runliveresponse", m.id),
                &other,
                session("missing.sh"),
            )
            .await;
        assert_eq!(st, 400, "{e}");
        assert!(assert_mde_error(&e, "InvalidInput").contains("not in the live response library"));
        let (st, a) = s
            .post(
                &format!("/api/machines/{}/runliveresponse", m.id),
                &other,
                session("Hello.sh"),
            )
            .await;
        assert_eq!(st, 201, "{a}");
        let groups = s.token_with("SecurityConfiguration.ReadWrite.All").await;
        let (st, g) = s
            .send(
                "POST",
                "/api/machinegroups",
                &groups,
                Some(json!({"name": "Locked", "rank": 1,
                    "rules": [{"kind": "NamePattern", "value": "locked-*"}],
                    "automationLevel": "NoAutomatedResponse"})),
            )
            .await;
        assert_eq!(st, 201, "{g}");
        let locked = seed_machine(&b, &s.tenant, "locked-1").await;
        let (st, e) = s
            .post(
                &format!("/api/machines/{}/runliveresponse", locked.id),
                &other,
                session("Hello.sh"),
            )
            .await;
        assert_eq!(st, 403, "{e}");
        assert!(assert_mde_error(&e, "DisallowedOperation").contains("NoAutomatedResponse"));

        let (st, _) = s
            .send("DELETE", "/api/libraryfiles/hello.sh", &manage, None)
            .await;
        assert_eq!(st, 204);
        let (st, e) = s
            .send("DELETE", "/api/libraryfiles/hello.sh", &manage, None)
            .await;
        assert_eq!(st, 404);
        assert_mde_error(&e, "ResourceNotFound");
        let (st, _) = s.get("/api/libraryfiles/Hello.sh", Some(&manage)).await;
        assert_eq!(st, 404);

        // Every change is audited.
        let audit = s.token_with("SecurityConfiguration.Read.All").await;
        let (st, entries) = s
            .get(
                "/api/audit?$filter=entityType eq 'LibraryFile'",
                Some(&audit),
            )
            .await;
        assert_eq!(st, 200, "{entries}");
        let actions: Vec<&str> = entries["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for expected in ["Create", "Update", "Delete"] {
            assert!(actions.contains(&expected), "{expected}: {entries}");
        }
    }
}

/// Stores a library file's details directly through the store (its content is not stored);
/// returns its name.
pub async fn seed_library_file(backend: &crate::harness::Backend, tenant: &str) -> String {
    use rampart_store::prelude::*;
    let store = backend.store().await;
    let now = time::OffsetDateTime::now_utc();
    let file = rampart_core::library::LibraryFile {
        file_name: "seeded.sh".into(),
        sha256: sha256_hex(b"seeded"),
        description: None,
        creation_time: now,
        last_updated_time: now,
        created_by: "test-seed".into(),
        has_parameters: false,
        parameters_description: None,
        size: 6,
    };
    store
        .put_library_file(
            &rampart_core::audit::AuditContext::system("test-seed"),
            tenant.parse().unwrap(),
            file,
            false,
        )
        .await
        .unwrap();
    "seeded.sh".into()
}
