//! Spawning servers and calling the CLI.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_rampart");

/// Where a test server keeps its state.
#[derive(Clone, Debug)]
pub struct Backend {
    pub name: &'static str,
    pub data_dir: PathBuf,
    pub database_url: String,
}

/// The backends to test: SQLite always, PostgreSQL when configured (a fresh schema each).
pub fn backends(dir: &Path) -> Vec<Backend> {
    let mut out = vec![Backend {
        name: "sqlite",
        data_dir: dir.join("sqlite"),
        database_url: format!(
            "sqlite://{}",
            dir.join("sqlite").join("rampart.db").display()
        ),
    }];
    if let Some(base) = std::env::var("RAMPART_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        let schema = format!("rt_{}", uuid::Uuid::new_v4().simple());
        let out_status = Command::new("psql")
            .arg(&base)
            .args([
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                &format!("CREATE SCHEMA {schema}"),
            ])
            .output();
        match out_status {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "RAMPART_TEST_DATABASE_URL is set but PostgreSQL refused: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("RAMPART_TEST_DATABASE_URL is set but psql could not run: {e}"),
        }
        let sep = if base.contains('?') { '&' } else { '?' };
        out.push(Backend {
            name: "postgres",
            data_dir: dir.join("postgres"),
            database_url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        });
    }
    out
}

impl Backend {
    /// Runs a CLI command against this backend; panics with its stderr when it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_raw(args);
        assert!(
            out.status.success(),
            "rampart {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    pub fn cli_raw(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--database-url")
            .arg(&self.database_url)
            .args(args)
            .env_remove("RAMPART_CONFIG")
            .output()
            .expect("run rampart")
    }

    /// Creates an app with `roles` in `tenant` (default tenant when None).
    pub fn create_app(&self, tenant: Option<&str>, roles: &str) -> AppCreds {
        let mut args = vec![
            "apps", "create", "--name", "test-app", "--roles", roles, "--json",
        ];
        if let Some(t) = tenant {
            args.extend(["--tenant", t]);
        }
        let v: serde_json::Value =
            serde_json::from_str(&self.cli(&args)).expect("apps create --json");
        AppCreds {
            tenant: v["tenantId"].as_str().unwrap().to_owned(),
            client_id: v["clientId"].as_str().unwrap().to_owned(),
            secret: v["clientSecret"].as_str().unwrap().to_owned(),
        }
    }

    /// Creates a tenant and returns its id.
    pub fn create_tenant(&self, name: &str) -> String {
        let v: serde_json::Value =
            serde_json::from_str(&self.cli(&["tenants", "create", name, "--json"])).unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    /// Opens the state store directly (to seed data no API creates yet).
    pub async fn store(&self) -> rampart_store::SqlStore {
        std::fs::create_dir_all(&self.data_dir).unwrap();
        rampart_store::SqlStore::connect(&self.database_url)
            .await
            .expect("open store")
    }
}

#[derive(Clone, Debug)]
pub struct AppCreds {
    pub tenant: String,
    pub client_id: String,
    pub secret: String,
}

impl AppCreds {
    /// The CLI flags that work through the server at `url` with these credentials.
    pub fn remote_args<'a>(&'a self, url: &'a str) -> [&'a str; 8] {
        [
            "--server",
            url,
            "--tenant",
            &self.tenant,
            "--client-id",
            &self.client_id,
            "--client-secret",
            &self.secret,
        ]
    }
}

/// A running `rampart serve`; killed on drop.
pub struct Server {
    pub url: String,
    pub tenant: String,
    pub backend: Backend,
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::Client,
}

impl Server {
    pub fn start(backend: &Backend) -> Server {
        Server::start_with(backend, &[])
    }

    /// Starts `rampart serve --listen 127.0.0.1:0 EXTRA…` and waits until it listens.
    pub fn start_with(backend: &Backend, extra: &[&str]) -> Server {
        Server::start_opts(backend, &[], extra)
    }

    /// Starts with global flags (`--config …`) and `serve` flags.
    pub fn start_opts(backend: &Backend, global: &[&str], extra: &[&str]) -> Server {
        Server::spawn(Command::new(BIN), backend, global, extra)
    }

    /// Starts `rampart serve --listen LISTEN EXTRA…`, for agents in another network namespace.
    pub fn start_listening(backend: &Backend, listen: &str, extra: &[&str]) -> Server {
        Server::spawn_on(Command::new(BIN), backend, &[], listen, extra)
    }

    /// Starts with global flags, serve flags and extra environment variables.
    pub fn start_env(backend: &Backend, global: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(BIN);
        command.envs(env.iter().copied());
        Server::spawn(command, backend, global, &[])
    }

    /// Starts a server whose files may not grow past `kib` KiB (`ulimit -f`), as on a full disk:
    /// writes past the limit fail with EFBIG (the signal that would kill it is ignored).
    pub fn start_with_file_limit(backend: &Backend, kib: u64) -> Server {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\""))
            .arg(BIN);
        Server::spawn(sh, backend, &[], &[])
    }

    fn spawn(command: Command, backend: &Backend, global: &[&str], extra: &[&str]) -> Server {
        Server::spawn_on(command, backend, global, "127.0.0.1:0", extra)
    }

    fn spawn_on(
        mut command: Command,
        backend: &Backend,
        global: &[&str],
        listen: &str,
        extra: &[&str],
    ) -> Server {
        let mut child = command
            .args(global)
            .arg("--data-dir")
            .arg(&backend.data_dir)
            .arg("--database-url")
            .arg(&backend.database_url)
            .args(["serve", "--listen", listen])
            .args(extra)
            .env("RAMPART_LOG", "info")
            .env_remove("RAMPART_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rampart serve");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        pump(child.stdout.take().unwrap(), stdout.clone());
        pump(child.stderr.take().unwrap(), stderr.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        let (url, tenant) = loop {
            let lines = stdout.lock().unwrap().clone();
            let url = lines
                .iter()
                .find_map(|l| l.split(" listening on ").nth(1).map(str::to_owned));
            let tenant = lines.iter().find_map(|l| {
                l.trim()
                    .strip_prefix("default tenant:")
                    .map(|t| t.trim().to_owned())
            });
            // The banner's last line: every line before it (the TLS fingerprint among them)
            // has been read.
            let banner_done = lines.iter().any(|l| l.trim().starts_with("API docs:"));
            if let (Some(u), Some(t), true) = (url, tenant, banner_done) {
                break (u, t);
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "rampart serve exited with {status}: {}",
                    stderr.lock().unwrap().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "rampart serve did not start: {}",
                stderr.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        Server {
            url,
            tenant,
            backend: backend.clone(),
            child,
            stdout,
            stderr,
            http,
        }
    }

    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Gets a token (v2 endpoint) for an app.
    pub async fn token(&self, app: &AppCreds) -> String {
        let resp = self
            .http
            .post(format!("{}/{}/oauth2/v2.0/token", self.url, app.tenant))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &app.client_id),
                ("client_secret", &app.secret),
                ("scope", &format!("{}/.default", self.url)),
            ])
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let v: serde_json::Value = resp.json().await.unwrap_or_default();
        assert_eq!(status, 200, "token request failed: {v}");
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// A token for a new app with `roles` in the server's default tenant.
    /// Imports NDJSON rows of `table` through `POST /api/telemetry/import` (needs
    /// `Event.Write`); panics unless the server answers 200.
    pub async fn import(&self, token: &str, table: &str, rows: &[serde_json::Value]) {
        let body = rows
            .iter()
            .map(serde_json::Value::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        let resp = self
            .http
            .post(format!("{}/api/telemetry/import?table={table}", self.url))
            .bearer_auth(token)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("import request");
        let status = resp.status().as_u16();
        assert_eq!(status, 200, "{}", resp.text().await.unwrap_or_default());
    }

    pub async fn token_with(&self, roles: &str) -> String {
        let app = self.backend.create_app(None, roles);
        self.token(&app).await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let resp = self.http.get(format!("{}/metrics", self.url)).send().await;
        resp.unwrap().text().await.unwrap()
    }

    /// GET with a bearer token; returns status and JSON body (Null when not JSON).
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// POST of a JSON body with a bearer token; returns status and JSON body (Null when not
    /// JSON).
    pub async fn post(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Any method, with a bearer token and an optional JSON body; returns status and JSON body
    /// (Null when not JSON).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `POST /api/libraryfiles`: a multipart form carrying `content` as the file `name`, and
    /// the text `fields` (`Description`, `OverrideIfExists`…); returns status and JSON body.
    pub async fn upload_library_file(
        &self,
        token: &str,
        name: &str,
        content: &[u8],
        fields: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        const BOUNDARY: &str = "rampart-test-boundary-7f3a";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let resp = self
            .http
            .post(format!("{}/api/libraryfiles", self.url))
            .bearer_auth(token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pump(stream: impl std::io::Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
}

/// Asserts an MDE error body with `code`, and returns its message.
pub fn assert_mde_error(body: &serde_json::Value, code: &str) -> String {
    let e = &body["error"];
    assert_eq!(e["code"], code, "unexpected error body {body}");
    assert!(
        e["target"].as_str().is_some_and(|t| t.len() == 36),
        "target is a correlation id: {body}"
    );
    e["message"].as_str().expect("message").to_owned()
}

/// Seeds `n` synthetic alerts into a tenant directly through the store.
pub async fn seed_alerts(
    backend: &Backend,
    tenant: &str,
    from: u64,
    n: u64,
) -> Vec<rampart_core::alert::Alert> {
    let store = backend.store().await;
    let tenant: rampart_core::TenantId = tenant.parse().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let alerts: Vec<_> = (from..from + n)
        .map(|i| rampart_core::alert::synthetic(i, tenant, now, 86_400))
        .collect();
    use rampart_store::prelude::*;
    store
        .insert_alerts(
            &rampart_core::audit::AuditContext::system("test-seed"),
            tenant,
            &alerts,
        )
        .await
        .unwrap();
    alerts
}

/// Reports a machine into a tenant directly through the store, as a sensor would.
pub async fn seed_machine(
    backend: &Backend,
    tenant: &str,
    name: &str,
) -> rampart_core::machine::Machine {
    use rampart_store::prelude::*;
    let store = backend.store().await;
    let tenant: rampart_core::TenantId = tenant.parse().unwrap();
    let h = sha_of(name);
    let id = format!("{h:032x}{:08x}", h as u32);
    let mut m = rampart_core::machine::Machine::new(
        id,
        name.to_owned(),
        "Linux".into(),
        time::OffsetDateTime::now_utc(),
    );
    m.last_ip_address = Some("10.1.2.3".into());
    store
        .report_machine(
            &rampart_core::audit::AuditContext::system("test-seed"),
            tenant,
            &m,
        )
        .await
        .unwrap()
}

/// A 40-hex-digit id derived from a name.
fn sha_of(name: &str) -> u128 {
    let mut h: u128 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h = (h ^ u128::from(b)).wrapping_mul(0x100000001b3);
    }
    h | (1 << 127)
}

/// Creates a device group in a tenant directly through the store.
pub async fn seed_group(
    backend: &Backend,
    tenant: &str,
    name: &str,
) -> rampart_core::machine::MachineGroup {
    use rampart_store::prelude::*;
    let store = backend.store().await;
    let tenant: rampart_core::TenantId = tenant.parse().unwrap();
    let g = rampart_core::machine::MachineGroup {
        id: 0,
        name: name.to_owned(),
        description: None,
        rank: 1,
        rules: vec![rampart_core::machine::GroupRule::NamePattern(
            "web-*".into(),
        )],
        automation_level: rampart_core::machine::AutomationLevel::SemiApprovalAllFolders,
        last_update_time: None,
    };
    store
        .create_machine_group(
            &rampart_core::audit::AuditContext::system("test-seed"),
            tenant,
            g,
        )
        .await
        .unwrap()
}

/// Seeds one alert on `machine` with a user and an IP in its evidence, so that every related-
/// entity route of the alert has something to show.
pub async fn seed_rich_alert(
    backend: &Backend,
    tenant: &str,
    machine: &rampart_core::machine::Machine,
) -> rampart_core::alert::Alert {
    use rampart_store::prelude::*;
    let store = backend.store().await;
    let tenant_id: rampart_core::TenantId = tenant.parse().unwrap();
    let mut a =
        rampart_core::alert::synthetic(999_999, tenant_id, time::OffsetDateTime::now_utc(), 60);
    a.machine_id = Some(machine.id.clone());
    a.computer_dns_name = Some(machine.computer_dns_name.clone());
    a.related_user = Some(rampart_core::alert::RelatedUser {
        user_name: Some("alice".into()),
        domain_name: Some("corp".into()),
    });
    a.evidence.push(rampart_core::alert::Evidence {
        entity_type: "Ip".into(),
        ip_address: Some("203.0.113.5".into()),
        ..Default::default()
    });
    store
        .insert_alerts(
            &rampart_core::audit::AuditContext::system("test-seed"),
            tenant_id,
            &[a],
        )
        .await
        .unwrap()
        .remove(0)
}

/// Seeds a queued investigation on `machine`.
pub async fn seed_investigation(
    backend: &Backend,
    tenant: &str,
    machine: &rampart_core::machine::Machine,
) -> rampart_core::investigation::Investigation {
    use rampart_store::prelude::*;
    let store = backend.store().await;
    let tenant: rampart_core::TenantId = tenant.parse().unwrap();
    let inv = rampart_core::investigation::Investigation::queued(
        &machine.id,
        Some(machine.computer_dns_name.clone()),
        time::OffsetDateTime::now_utc(),
    );
    store
        .create_investigation(
            &rampart_core::audit::AuditContext::system("test-seed"),
            tenant,
            inv,
        )
        .await
        .unwrap()
}

/// Seeds a remediation action, pending approval, of `investigation` on `machine`.
pub async fn seed_remediation_action(
    backend: &Backend,
    tenant: &str,
    machine: &rampart_core::machine::Machine,
    investigation: &rampart_core::investigation::Investigation,
) -> String {
    let expires = time::OffsetDateTime::now_utc() + rampart_core::remediation::APPROVAL_TIMEOUT;
    seed_pending_remediation(backend, tenant, machine, investigation, expires).await
}

/// Seeds a remediation action of `investigation` on `machine`, pending approval until
/// `expires`.
pub async fn seed_pending_remediation(
    backend: &Backend,
    tenant: &str,
    machine: &rampart_core::machine::Machine,
    investigation: &rampart_core::investigation::Investigation,
    expires: time::OffsetDateTime,
) -> String {
    use rampart_core::remediation::{RemediationAction, RemediationStatus, RemediationType};
    use rampart_store::prelude::*;
    let store = backend.store().await;
    let now = time::OffsetDateTime::now_utc();
    let action = RemediationAction {
        id: String::new(),
        investigation_id: investigation.id.clone(),
        machine_id: machine.id.clone(),
        computer_dns_name: Some(machine.computer_dns_name.clone()),
        action_type: RemediationType::QuarantineFile,
        entity_name: "/tmp/seeded".into(),
        entity_id: 0,
        sha1: Some("5e".repeat(20)),
        file_path: Some("/tmp/seeded".into()),
        process_id: None,
        entries: vec![],
        indicator_type: None,
        indicator_value: None,
        reasons: vec!["seeded".into()],
        status: RemediationStatus::PendingApproval,
        status_details: None,
        approval_required: true,
        created_time: now,
        last_update_time: now,
        expiration_time: Some(expires),
        decided_by: None,
        decision_comment: None,
        decision_time: None,
        machine_action_id: None,
        undo_machine_action_id: None,
        indicator_id: None,
    };
    store
        .create_remediation_actions(
            &rampart_core::audit::AuditContext::system("test-seed"),
            tenant.parse().unwrap(),
            vec![action],
        )
        .await
        .unwrap()
        .remove(0)
        .id
}
