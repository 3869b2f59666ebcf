//! The `rampart` binary: the server (`serve`, `demo`) and the administration commands
//! (`tenants`, `apps`, `keys`). Commands other than the server open the state store directly,
//! so they work whether or not a server is running; `ingest` writes the event store directly and
//! needs the server stopped (the API's `/api/telemetry/import` is the way while it runs).

mod admin;
mod agents;
mod allocator;
mod cli;
mod command_fleet;
mod config;
mod demo;
mod hunt;
mod indicators;
mod ingest;
mod open_files;
mod remote;
mod serve;
mod simulate;
mod tls;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    allocator::keep_freed_memory();
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rampart=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let settings = config::Settings::resolve(&cli.global)?;
    match cli.command {
        cli::Command::Serve(flags) => serve::serve(settings.with_serve_flags(&flags)?).await,
        cli::Command::Demo(flags) => demo::run(settings, flags).await,
        cli::Command::Tenants(cmd) => admin::tenants(&settings, cmd).await,
        cli::Command::Apps(cmd) => admin::apps(&settings, cmd).await,
        cli::Command::Keys(cmd) => admin::keys(&settings, cmd).await,
        cli::Command::Ingest(args) => ingest::run(&settings, args).await,
        cli::Command::Hunt(args) => hunt::run(&settings, args).await,
        cli::Command::Indicators(cmd) => indicators::run(&settings, cmd).await,
        cli::Command::Simulate(args) => match (args.channel.agents, args.out.clone()) {
            (Some(agents), _) => command_fleet::run(args.channel, agents, args.seed).await,
            (None, Some(out)) => {
                tokio::task::spawn_blocking(move || simulate::write_files(args, out)).await?
            }
            (None, None) => anyhow::bail!("simulate needs --out DIR or --agents N"),
        },
    }
}
