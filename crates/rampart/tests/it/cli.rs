//! The administration commands and the demo.

use crate::harness::{BIN, backends};
use std::process::Command;

#[test]
fn tenants_and_apps_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let id = b.create_tenant("Contoso");
        let list = b.cli(&["tenants", "list"]);
        assert!(
            list.contains(&id) && list.contains("Contoso") && list.contains("Default"),
            "{list}"
        );
        let app = b.create_app(Some(&id), "Alert.ReadWrite.All,Machine.Isolate");
        let apps = b.cli(&["apps", "list", "--tenant", &id]);
        assert!(
            apps.contains(&app.client_id) && apps.contains("Machine.Isolate"),
            "{apps}"
        );
        assert!(
            !b.cli(&["apps", "list", "--json"]).contains(&app.secret),
            "the secret is never shown again"
        );
        b.cli(&[
            "apps",
            "delete",
            "--tenant",
            &id,
            "--client-id",
            &app.client_id,
        ]);
        assert!(!b.cli(&["apps", "list"]).contains(&app.client_id));
        let keys = b.cli(&["keys", "rotate", "--tenant", &id]);
        assert!(keys.contains(&id));
    }
}

#[test]
fn bad_arguments_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let err = |args: &[&str]| {
        let out = b.cli_raw(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(
        err(&[
            "apps",
            "create",
            "--name",
            "x",
            "--roles",
            "Alert.Read.All,Alert.Write"
        ])
        .contains("Alert.Write")
    );
    assert!(
        err(&[
            "apps",
            "create",
            "--name",
            "x",
            "--roles",
            "Alert.Read.All",
            "--tenant",
            "nope"
        ])
        .contains("nope")
    );
    let missing = uuid::Uuid::new_v4().to_string();
    assert!(
        err(&[
            "apps",
            "create",
            "--name",
            "x",
            "--roles",
            "Alert.Read.All",
            "--tenant",
            &missing
        ])
        .contains("does not exist")
    );
    assert!(err(&["apps", "delete", "--client-id", &missing]).contains("does not exist"));

    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
    let out = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "tenants", "list"])
        .output()
        .unwrap();
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && msg.contains("listen_port"),
        "{msg}"
    );
}

#[tokio::test]
async fn demo_prints_working_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["demo", "--listen", &listen])
        .env_remove("RAMPART_DATABASE_URL")
        .env_remove("RAMPART_DATA_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let lines = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                lines.lock().unwrap().push(l);
            }
        });
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("listening on"))
    {
        assert!(std::time::Instant::now() < deadline, "demo did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = lines.lock().unwrap().join("\n");
    // Run the printed curl lines with a shell, exactly as a newcomer would paste them.
    let script: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("TOKEN=") || l.starts_with("curl "))
        .collect();
    assert_eq!(script.len(), 2, "{out}");
    let run_script = || {
        let result = Command::new("sh")
            .arg("-c")
            .arg(script.join("\n"))
            .output()
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&result.stdout)
            .unwrap_or_else(|_| panic!("curl printed {}", String::from_utf8_lossy(&result.stdout)));
        body
    };
    let body = run_script();
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#Machines")
    );
    // The 5 seeded machines, then the 20 simulated devices as they enroll and stream telemetry.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut body = body;
    while body["value"].as_array().map_or(0, Vec::len) < 25 && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(500));
        body = run_script();
    }
    assert_eq!(body["value"].as_array().map(Vec::len), Some(25), "{body}");
    let base = out
        .lines()
        .find_map(|l| l.split("curl -s -H").nth(1))
        .and_then(|l| l.split('\'').nth(1))
        .and_then(|u| u.split("/api/").next())
        .expect("the printed curl line names the server")
        .to_owned();
    let mut accepted = 0.0;
    let mut software = 0.0;
    while (accepted == 0.0 || software == 0.0) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let metrics = Command::new("curl")
            .args(["-s", &format!("{base}/metrics")])
            .output()
            .unwrap();
        let sum = |table: &str| -> f64 {
            String::from_utf8_lossy(&metrics.stdout)
                .lines()
                .filter(|l| {
                    l.starts_with("rampart_telemetry_rows_total")
                        && l.contains("outcome=\"accepted\"")
                        && l.contains(table)
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        accepted = sum("");
        // Each simulated device reports its installed software as it starts.
        software = sum("table=\"DeviceTvmSoftwareInventory\"");
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        accepted > 0.0,
        "simulated telemetry arrived within a minute"
    );
    assert!(
        software > 0.0,
        "the simulated devices reported their software"
    );
    assert!(dir.path().join("rampart-demo/rampart.db").exists());
}
