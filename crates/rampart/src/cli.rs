//! Command-line syntax. Every flag can also be set by a `RAMPART_*` environment variable and, for
//! the server, in the `--config` TOML file; a flag beats the environment, which beats the file.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "rampart",
    version,
    about = "Rampart: a self-hosted EDR with an MDE-compatible partner API"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalFlags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone, Default)]
pub struct GlobalFlags {
    /// Where Rampart keeps its state (SQLite database, keys, certificates) [default: ./rampart-data]
    #[arg(long, global = true, env = "RAMPART_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// State store: sqlite://PATH or postgres://USER@HOST/DB [default: SQLite in the data dir]
    #[arg(long, global = true, env = "RAMPART_DATABASE_URL")]
    pub database_url: Option<String>,
    /// TOML configuration file
    #[arg(long, global = true, env = "RAMPART_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where telemetry Parquet files go: a directory or file:// URL [default: DATA_DIR/telemetry/events]
    #[arg(long, global = true, env = "RAMPART_EVENTS_URL")]
    pub events_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server
    Serve(ServeFlags),
    /// Run the server on an embedded store in ./rampart-demo with a ready-to-use app
    Demo(DemoFlags),
    /// Manage tenants
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Manage OAuth2 apps (client credentials)
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Manage token-signing keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Import telemetry files (NDJSON rows, MDE streaming-API records, CSV exports) into the
    /// event store; the server must not be running on the same data dir
    Ingest(IngestArgs),
    /// Run an advanced-hunting KQL query over the data dir, or through a server with --server
    Hunt(HuntArgs),
    /// Generate realistic fleet telemetry (with attack scenarios) into files, or hold
    /// simulated agents on a server's command channel (--agents)
    Simulate(crate::simulate::SimulateArgs),
    /// Import threat-intelligence feeds as indicators
    #[command(subcommand)]
    Indicators(IndicatorsCommand),
}

#[derive(Subcommand, Debug)]
pub enum IndicatorsCommand {
    /// Import feed files (MDE CSV template, plain lists, STIX 2.1 bundles, MISP events) as the
    /// indicators of one source; re-importing updates them
    Import(FeedArgs),
    /// Pull what a TAXII 2.1 collection added since the last pull, and import it into the data
    /// dir (where the cursor is kept)
    Sync(TaxiiArgs),
}

/// How to reach a server instead of the local data dir.
#[derive(Args, Debug, Clone, Default)]
pub struct RemoteArgs {
    /// Work through this server's API instead of the local data dir
    #[arg(long)]
    pub server: Option<String>,
    /// App client id for --server
    #[arg(long, env = "RAMPART_CLIENT_ID")]
    pub client_id: Option<String>,
    /// App client secret for --server
    #[arg(
        long,
        env = "RAMPART_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub client_secret: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct FeedArgs {
    /// The feed's name: its indicators carry it as `source`, and --sync expires only its own
    #[arg(long)]
    pub source: String,
    /// csv, txt, stix or misp [default: told from each file's name and content]
    #[arg(long)]
    pub format: Option<String>,
    /// Expire the source's indicators that these files no longer list
    #[arg(long)]
    pub sync: bool,
    /// Tenant id [default: the default tenant; required with --server]
    #[arg(long)]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Feed files
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct TaxiiArgs {
    /// The TAXII 2.1 API root, e.g. https://taxii.example/api1/
    #[arg(long)]
    pub taxii: String,
    /// The collection id
    #[arg(long)]
    pub collection: String,
    /// The feed's name: its indicators carry it as `source`
    #[arg(long)]
    pub source: String,
    /// HTTP basic user for the TAXII server
    #[arg(long, requires = "taxii_password")]
    pub taxii_user: Option<String>,
    /// HTTP basic password for the TAXII server
    #[arg(long, env = "RAMPART_TAXII_PASSWORD", hide_env_values = true)]
    pub taxii_password: Option<String>,
    /// Bearer token for the TAXII server
    #[arg(long, env = "RAMPART_TAXII_TOKEN", hide_env_values = true)]
    pub taxii_token: Option<String>,
    /// Forget where the last pull stopped and read the whole collection
    #[arg(long)]
    pub from_start: bool,
    /// Tenant id [default: the default tenant]
    #[arg(long)]
    pub tenant: Option<String>,
}

/// How `rampart hunt` prints results.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuntFormat {
    /// Aligned columns (the default on a terminal)
    Table,
    /// `{"Schema", "Results"}` as the API answers (the default otherwise)
    Json,
    /// One JSON object per row
    Ndjson,
    /// A header row, then one line per row
    Csv,
}

#[derive(Args, Debug, Clone)]
pub struct HuntArgs {
    /// The KQL query (or use -f, or pipe it on stdin)
    pub query: Option<String>,
    /// Read the query from a file (`-` for stdin)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(long, value_enum)]
    pub format: Option<HuntFormat>,
    /// Parse and bind the query only, and report its first error
    #[arg(long)]
    pub check: bool,
    /// Prompt for queries (the default on a terminal when no query is given)
    #[arg(long, short = 'i')]
    pub interactive: bool,
    /// Tenant id [default: the default tenant; required with --server]
    #[arg(long)]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    /// Tenant id [default: the default tenant]
    #[arg(long)]
    pub tenant: Option<String>,
    /// The table of plain rows (NDJSON rows and CSV files); streaming records name their own
    #[arg(long)]
    pub table: Option<String>,
    /// Files to import; `.csv` files are CSV, others JSON (lines or documents)
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ServeFlags {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "RAMPART_LISTEN")]
    pub listen: Option<String>,
    /// PEM certificate chain for TLS
    #[arg(long, env = "RAMPART_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS
    #[arg(long, env = "RAMPART_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve TLS with a self-signed certificate kept in the data dir
    #[arg(long, env = "RAMPART_TLS_SELF_SIGNED", conflicts_with = "tls_cert")]
    pub tls_self_signed: bool,
    /// The base URL clients use, when it differs from what they send as Host
    #[arg(long, env = "RAMPART_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Turn off the per-app rate limits
    #[arg(long, env = "RAMPART_NO_RATE_LIMITS")]
    pub no_rate_limits: bool,
    /// Join the cluster bus at this NATS server (nats://host:4222): servers sharing the
    /// database wake each other's agent polls and indicator reloads
    #[arg(long, env = "RAMPART_NATS_URL")]
    pub nats_url: Option<String>,
    /// The cluster's name on the bus, the prefix of its subjects [default: rampart]
    #[arg(long, env = "RAMPART_CLUSTER_NAME", requires = "nats_url")]
    pub cluster_name: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct DemoFlags {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080", env = "RAMPART_LISTEN")]
    pub listen: String,
}

#[derive(Subcommand, Debug)]
pub enum TenantsCommand {
    /// Create a tenant and print its id
    Create {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List tenants
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AppsCommand {
    /// Register an app; prints its client id and secret (shown only this once)
    Create {
        /// Tenant id [default: the default tenant]
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        name: String,
        /// Comma-separated MDE permissions, e.g. Alert.ReadWrite.All,Machine.Isolate; `all` for every one
        #[arg(long)]
        roles: String,
        #[arg(long)]
        json: bool,
    },
    /// List apps
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Replace an app's secret; prints the new one (shown only this once)
    RotateSecret {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete an app
    Delete {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        client_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Add a new signing key for a tenant; new tokens use it, old tokens stay valid
    Rotate {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List signing keys (public parts)
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
}
