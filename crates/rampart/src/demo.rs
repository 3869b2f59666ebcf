//! `rampart demo`: the whole platform on an embedded store in `./rampart-demo`, with an app that
//! holds every permission and a curl line that uses it.

use crate::admin::create_app;
use crate::cli::{DemoFlags, ServeFlags};
use crate::config::{Settings, sqlite_url};
use crate::serve::open_store;
use anyhow::Context;
use rampart_core::audit::AuditContext;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The demo app's credentials, kept in the demo dir so every demo run can print them.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DemoApp {
    tenant_id: String,
    client_id: String,
    client_secret: String,
    /// The enrollment token the simulated agents enroll with.
    #[serde(default)]
    enrollment_token: Option<String>,
    /// Whether the sample detection rules were created.
    #[serde(default)]
    detection_rules: bool,
}

/// Detection rules for the simulator's attack scenarios: (name, period, query, severity,
/// category, MITRE technique).
const SAMPLE_RULES: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "Encoded PowerShell command",
        "0",
        "DeviceProcessEvents\n| where FileName =~ 'powershell.exe' and ProcessCommandLine contains ' -enc '",
        "High",
        "Execution",
        "T1059.001",
    ),
    (
        "LSASS memory dump",
        "0",
        "DeviceProcessEvents\n| where ProcessCommandLine has 'lsass' and (FileName in~ ('procdump64.exe', 'procdump.exe') or ProcessCommandLine has 'MiniDump')",
        "High",
        "CredentialAccess",
        "T1003.001",
    ),
    (
        "Script downloaded and piped to a shell",
        "0",
        "DeviceProcessEvents\n| where ProcessCommandLine contains 'curl' and ProcessCommandLine contains '| sh'",
        "Medium",
        "Execution",
        "T1059.004",
    ),
    (
        "Remote execution tool on many devices",
        "1H",
        "DeviceProcessEvents\n| where FileName in~ ('PsExec64.exe', 'PsExec.exe', 'wmic.exe') and ProcessCommandLine has_any ('-accepteula', '/node:')\n| summarize Timestamp = max(Timestamp), Commands = count() by DeviceId, DeviceName, AccountName",
        "Medium",
        "LateralMovement",
        "T1021.002",
    ),
];

/// Creates the sample detection rules (checked as the API checks them).
async fn seed_detection_rules(
    store: &dyn rampart_store::Store,
    ctx: &AuditContext,
    tenant: rampart_core::TenantId,
) -> anyhow::Result<()> {
    use rampart_core::detection_rule::{AlertTemplate, DetectionAction, DetectionRule};
    let now = time::OffsetDateTime::now_utc();
    for (name, period, query, severity, category, technique) in SAMPLE_RULES {
        let mut template = AlertTemplate::new(
            *name,
            severity.parse().map_err(anyhow::Error::msg)?,
            *category,
        );
        template.description = format!("The demo's custom detection rule '{name}' matched.");
        template.mitre_techniques = vec![(*technique).into()];
        let period = period.parse().map_err(anyhow::Error::msg)?;
        let mut rule = DetectionRule::new(
            *name,
            *query,
            period,
            DetectionAction::alert(template),
            "rampart-demo",
            now,
        );
        rule.description = Some("A sample rule of the Rampart demo".into());
        rule.check_shape()
            .map_err(|r| anyhow::anyhow!("sample rule {name}: {}", r.message))?;
        let compiled = rampart_detect::compile(&rule)
            .await
            .with_context(|| format!("sample rule {name}"))?;
        rule.continuous_table = compiled.continuous_table.map(str::to_owned);
        rule.settle(now);
        store.create_detection_rule(ctx, tenant, rule).await?;
    }
    Ok(())
}

/// How many simulated devices stream telemetry in the demo.
const SIMULATED_DEVICES: usize = 20;

/// An enrollment token for the demo's simulated agents.
async fn create_enrollment_token(
    store: &dyn rampart_store::Store,
    ctx: &AuditContext,
    tenant: rampart_core::TenantId,
) -> anyhow::Result<String> {
    use rampart_api::auth::device::{new_secret, secret_hash};
    use rampart_core::enrollment::{ENROLLMENT_TOKEN_PREFIX, EnrollmentToken};
    let secret = new_secret(ENROLLMENT_TOKEN_PREFIX);
    let token = EnrollmentToken {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant,
        name: "rampart-demo simulated fleet".into(),
        created_time: time::OffsetDateTime::now_utc(),
        expires_time: None,
        max_uses: None,
        uses: 0,
        revoked: false,
    };
    store
        .create_enrollment_token(ctx, &token, &secret_hash(&secret))
        .await?;
    Ok(secret)
}

/// How many sample alerts a fresh demo starts with.
const SAMPLE_ALERTS: u64 = 25;

/// The machines of the demo fleet: (name, OS platform).
const SAMPLE_MACHINES: &[(&str, &str)] = &[
    ("web-1.corp.example", "Linux"),
    ("web-2.corp.example", "Linux"),
    ("db-1.corp.example", "Linux"),
    ("build.lab.example", "Linux"),
    ("ceo-laptop.corp.example", "Windows11"),
];

/// A small fleet: machines, and alerts on them (each alert opens an incident).
async fn seed_fleet(
    store: &dyn rampart_store::Store,
    ctx: &AuditContext,
    tenant: rampart_core::TenantId,
    now: time::OffsetDateTime,
) -> anyhow::Result<()> {
    use sha2::Digest;
    let mut machines = Vec::new();
    for (i, (name, os)) in SAMPLE_MACHINES.iter().enumerate() {
        let id: String = sha2::Sha256::digest(name.as_bytes())
            .iter()
            .take(20)
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut m =
            rampart_core::machine::Machine::new(id, (*name).to_owned(), (*os).to_owned(), now);
        m.last_ip_address = Some(format!("10.0.0.{}", 10 + i));
        machines.push(store.report_machine(ctx, tenant, &m).await?);
    }
    let alerts: Vec<_> = (0..SAMPLE_ALERTS)
        .map(|n| {
            let mut a = rampart_core::alert::synthetic(n, tenant, now, 86_400);
            let m = &machines[n as usize % machines.len()];
            a.machine_id = Some(m.id.clone());
            a.computer_dns_name = Some(m.computer_dns_name.clone());
            a
        })
        .collect();
    store.insert_alerts(ctx, tenant, &alerts).await?;
    Ok(())
}

pub async fn run(mut settings: Settings, flags: DemoFlags) -> anyhow::Result<()> {
    settings.data_dir = PathBuf::from("./rampart-demo");
    settings.database_url = sqlite_url(&settings.data_dir);
    let store = open_store(&settings).await?;
    let tenant = store.ensure_default_tenant().await?.id;
    let creds_path = settings.data_dir.join("demo-app.json");
    let mut creds: DemoApp = match std::fs::read_to_string(&creds_path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("reading {}", creds_path.display()))?,
        Err(_) => {
            let ctx = AuditContext::system("demo");
            let (app, secret) =
                create_app(store.as_ref(), &ctx, tenant, "rampart-demo", "all").await?;
            let now = time::OffsetDateTime::now_utc();
            seed_fleet(store.as_ref(), &ctx, tenant, now).await?;
            let creds = DemoApp {
                tenant_id: tenant.to_string(),
                client_id: app.client_id.to_string(),
                client_secret: secret,
                enrollment_token: None,
                detection_rules: false,
            };
            crate::tls::write_private(&creds_path, &serde_json::to_vec_pretty(&creds)?)?;
            creds
        }
    };
    // Demo dirs from before the simulated fleet get their enrollment token now.
    if creds.enrollment_token.is_none() {
        let ctx = AuditContext::system("demo");
        creds.enrollment_token = Some(create_enrollment_token(store.as_ref(), &ctx, tenant).await?);
        crate::tls::write_private(&creds_path, &serde_json::to_vec_pretty(&creds)?)?;
    }
    if !creds.detection_rules {
        let ctx = AuditContext::system("demo");
        seed_detection_rules(store.as_ref(), &ctx, tenant).await?;
        creds.detection_rules = true;
        crate::tls::write_private(&creds_path, &serde_json::to_vec_pretty(&creds)?)?;
    }
    drop(store);
    let base = format!("http://{}", flags.listen);
    println!("Rampart demo — state in {}", settings.data_dir.display());
    println!(
        "  demo app (every permission): client id {} secret {}",
        creds.client_id, creds.client_secret
    );
    println!("  get a token and list machines:");
    println!(
        "  TOKEN=$(curl -s -X POST {base}/{}/oauth2/v2.0/token -d grant_type=client_credentials -d client_id={} -d client_secret={} -d scope={base}/.default | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')",
        creds.tenant_id, creds.client_id, creds.client_secret
    );
    println!("  curl -s -H \"Authorization: Bearer $TOKEN\" '{base}/api/machines'");
    println!(
        "  {SIMULATED_DEVICES} simulated devices stream telemetry; an attack scenario starts every 3 minutes;"
    );
    println!("  custom detection rules raise alerts on them: '{base}/api/detectionrules'");
    println!();
    if let Some(token) = creds.enrollment_token.clone() {
        let agents_path = settings.data_dir.join("demo-agents.json");
        let base = base.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::agents::run(base, token, SIMULATED_DEVICES, agents_path).await {
                tracing::error!("simulated agents stopped: {e:#}");
            }
        });
    }
    let flags = ServeFlags {
        listen: Some(flags.listen),
        ..ServeFlags::default()
    };
    crate::serve::serve(settings.with_serve_flags(&flags)?).await
}
