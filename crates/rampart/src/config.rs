//! Resolving settings from flags, `RAMPART_*` variables (clap reads those) and the TOML file.

use crate::cli::{GlobalFlags, ServeFlags};
use anyhow::{Context, bail};
use rampart_api::ApiConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The `--config` file. Unknown keys are errors, so a typo doesn't silently fall back.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    events_url: Option<String>,
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_self_signed: Option<bool>,
    api: Option<ApiConfig>,
}

/// How the server speaks TLS.
#[derive(Debug, Clone, PartialEq)]
pub enum Tls {
    Off,
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: String,
    /// Where telemetry files go (None: `DATA_DIR/telemetry/events`).
    pub events_url: Option<String>,
    pub listen: String,
    pub tls: Tls,
    pub api: ApiConfig,
    file: FileConfigSubset,
}

/// What of the file applies only to `serve`.
#[derive(Debug, Clone, Default)]
struct FileConfigSubset {
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_self_signed: Option<bool>,
}

impl Settings {
    pub fn resolve(flags: &GlobalFlags) -> anyhow::Result<Settings> {
        let file: FileConfig = match &flags.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = flags
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./rampart-data"));
        let database_url = flags
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| sqlite_url(&data_dir));
        let events_url = flags.events_url.clone().or(file.events_url);
        Ok(Settings {
            data_dir,
            database_url,
            events_url,
            listen: "127.0.0.1:8080".into(),
            tls: Tls::Off,
            api: file.api.unwrap_or_default(),
            file: FileConfigSubset {
                listen: file.listen,
                tls_cert: file.tls_cert,
                tls_key: file.tls_key,
                tls_self_signed: file.tls_self_signed,
            },
        })
    }

    /// Applies the `serve` flags over the file's server settings.
    pub fn with_serve_flags(mut self, f: &ServeFlags) -> anyhow::Result<Settings> {
        self.listen = f
            .listen
            .clone()
            .or(self.file.listen.clone())
            .unwrap_or(self.listen);
        let cert = f.tls_cert.clone().or(self.file.tls_cert.clone());
        let key = f.tls_key.clone().or(self.file.tls_key.clone());
        let self_signed = f.tls_self_signed || self.file.tls_self_signed.unwrap_or(false);
        self.tls = match (cert, key, self_signed) {
            (Some(_), Some(_), true) => {
                bail!("--tls-self-signed and --tls-cert/--tls-key exclude each other")
            }
            (Some(cert), Some(key), false) => Tls::Files { cert, key },
            (None, None, true) => Tls::SelfSigned,
            (None, None, false) => Tls::Off,
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        self.api.tls = self.tls != Tls::Off;
        if let Some(url) = &f.nats_url {
            let name = f
                .cluster_name
                .clone()
                .or_else(|| self.api.cluster.as_ref().map(|c| c.name.clone()))
                .unwrap_or_else(|| "rampart".into());
            self.api.cluster = Some(rampart_api::cluster::ClusterConfig {
                nats_url: url.clone(),
                name,
            });
        }
        if let Some(u) = &f.public_url {
            self.api.public_url = Some(u.clone());
        }
        if f.no_rate_limits {
            self.api.rate_limits.enabled = false;
        }
        Ok(self)
    }
}

pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("rampart.db").display())
}
