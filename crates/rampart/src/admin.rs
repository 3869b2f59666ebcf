//! `rampart tenants|apps|keys`: administration straight against the state store.

use crate::cli::{AppsCommand, KeysCommand, TenantsCommand};
use crate::config::Settings;
use crate::serve::open_store;
use anyhow::{Context, anyhow, bail};
use rampart_api::auth::{KeyRing, secret};
use rampart_core::app::App;
use rampart_core::audit::AuditContext;
use rampart_core::permission::parse_list;
use rampart_core::{ClientId, TenantId};
use rampart_store::Store;
use time::OffsetDateTime;

fn cli_ctx() -> AuditContext {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    AuditContext::system(&format!("cli:{user}"))
}

/// The tenant a command acts on: the one named, or the default tenant.
pub async fn resolve_tenant(store: &dyn Store, tenant: Option<&str>) -> anyhow::Result<TenantId> {
    match tenant {
        None => Ok(store.ensure_default_tenant().await?.id),
        Some(t) => {
            let id: TenantId = t.parse().map_err(|_| {
                anyhow!("--tenant '{t}' is not a tenant id (a GUID); see `rampart tenants list`")
            })?;
            store
                .get_tenant(id)
                .await?
                .ok_or_else(|| anyhow!("tenant {id} does not exist; see `rampart tenants list`"))?;
            Ok(id)
        }
    }
}

fn parse_client_id(s: &str) -> anyhow::Result<ClientId> {
    s.parse().map_err(|_| {
        anyhow!("--client-id '{s}' is not a client id (a GUID); see `rampart apps list`")
    })
}

pub async fn tenants(settings: &Settings, cmd: TenantsCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    store.ensure_default_tenant().await?;
    match cmd {
        TenantsCommand::Create { name, json } => {
            if name.trim().is_empty() {
                bail!("the tenant name must not be empty");
            }
            let t = store.create_tenant(&cli_ctx(), name.trim(), false).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                println!("Created tenant {} ({})", t.id, t.name);
            }
        }
        TenantsCommand::List { json } => {
            let list = store.list_tenants().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!("{:<36}  {:<7}  NAME", "ID", "DEFAULT");
                for t in list {
                    println!(
                        "{}  {:<7}  {}",
                        t.id,
                        if t.is_default { "yes" } else { "" },
                        t.name
                    );
                }
            }
        }
    }
    Ok(())
}

/// Registers an app and returns it with its secret (which is not stored, only its hash).
pub async fn create_app(
    store: &dyn Store,
    ctx: &AuditContext,
    tenant: TenantId,
    name: &str,
    roles: &str,
) -> anyhow::Result<(App, String)> {
    let roles = parse_list(roles).map_err(|e| anyhow!("--roles: {e}; valid names are listed by `rampart apps create --help` and in the API docs"))?;
    if roles.is_empty() {
        bail!("--roles must name at least one permission");
    }
    if name.trim().is_empty() {
        bail!("--name must not be empty");
    }
    let now = OffsetDateTime::now_utc();
    let app = App {
        tenant_id: tenant,
        client_id: ClientId::new_random(),
        name: name.trim().to_owned(),
        roles,
        created_time: now,
        secret_updated_time: now,
    };
    let secret = secret::generate();
    let hash = secret::hash(&secret).map_err(|e| anyhow!("hashing the secret: {e}"))?;
    store.create_app(ctx, &app, &hash).await?;
    Ok((app, secret))
}

pub async fn apps(settings: &Settings, cmd: AppsCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match cmd {
        AppsCommand::Create {
            tenant,
            name,
            roles,
            json,
        } => {
            let tenant = resolve_tenant(store.as_ref(), tenant.as_deref()).await?;
            let (app, secret) =
                create_app(store.as_ref(), &cli_ctx(), tenant, &name, &roles).await?;
            if json {
                let v = serde_json::json!({
                    "tenantId": app.tenant_id, "clientId": app.client_id, "clientSecret": secret,
                    "name": app.name, "roles": app.roles,
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("Created app '{}' in tenant {}", app.name, app.tenant_id);
                println!("  client id:     {}", app.client_id);
                println!("  client secret: {secret}");
                println!(
                    "  roles:         {}",
                    app.roles
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                println!(
                    "The secret is shown only now; store it safely (`rampart apps rotate-secret` makes a new one)."
                );
            }
        }
        AppsCommand::List { tenant, json } => {
            let tenant = match tenant {
                Some(t) => Some(resolve_tenant(store.as_ref(), Some(&t)).await?),
                None => None,
            };
            let list = store.list_apps(tenant).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<36}  {:<36}  {:<24}  ROLES",
                    "TENANT", "CLIENT ID", "NAME"
                );
                for a in list {
                    let roles = a
                        .roles
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(",");
                    println!("{}  {}  {:<24}  {roles}", a.tenant_id, a.client_id, a.name);
                }
            }
        }
        AppsCommand::RotateSecret {
            tenant,
            client_id,
            json,
        } => {
            let tenant = resolve_tenant(store.as_ref(), tenant.as_deref()).await?;
            let client = parse_client_id(&client_id)?;
            let secret = secret::generate();
            let hash = secret::hash(&secret).map_err(|e| anyhow!("hashing the secret: {e}"))?;
            if !store
                .set_app_secret(&cli_ctx(), tenant, client, &hash)
                .await?
            {
                bail!("app {client} does not exist in tenant {tenant}");
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "tenantId": tenant, "clientId": client, "clientSecret": secret })
                );
            } else {
                println!("New secret for app {client}: {secret}");
                println!(
                    "The old secret no longer works; tokens already issued stay valid until they expire."
                );
            }
        }
        AppsCommand::Delete { tenant, client_id } => {
            let tenant = resolve_tenant(store.as_ref(), tenant.as_deref()).await?;
            let client = parse_client_id(&client_id)?;
            if !store.delete_app(&cli_ctx(), tenant, client).await? {
                bail!("app {client} does not exist in tenant {tenant}");
            }
            println!("Deleted app {client}.");
        }
    }
    Ok(())
}

pub async fn keys(settings: &Settings, cmd: KeysCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match cmd {
        KeysCommand::Rotate { tenant } => {
            let tenant = resolve_tenant(store.as_ref(), tenant.as_deref()).await?;
            let ring = KeyRing::load(store.as_ref())
                .await
                .context("loading signing keys")?;
            let kid = ring.rotate(store.as_ref(), &cli_ctx(), tenant).await?;
            println!(
                "New signing key {kid} for tenant {tenant}; running servers pick it up when they next see a token it signed or reload."
            );
        }
        KeysCommand::List { tenant } => {
            let tenant = match tenant {
                Some(t) => Some(resolve_tenant(store.as_ref(), Some(&t)).await?),
                None => None,
            };
            println!("{:<36}  {:<22}  CREATED", "TENANT", "KID");
            for k in store.signing_keys().await? {
                if tenant.is_none_or(|t| t == k.tenant_id) {
                    println!(
                        "{}  {:<22}  {}",
                        k.tenant_id,
                        k.kid,
                        rampart_core::timefmt::format(k.created_time)
                    );
                }
            }
        }
    }
    Ok(())
}
