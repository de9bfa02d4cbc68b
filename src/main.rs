//! The `bridgecore` binary: `bridgecore -c conf/bridgecore.yaml [--test] [-d] [-u]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bridgecore::config::Config;
use bridgecore::signals::ReloadOnHangup;
use bridgecore::BridgeCore;
use clap::Parser;
use pingora::server::configuration::Opt;
use pingora::server::{RunArgs, Server};
use pingora::services::background::background_service;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An Odoo-aware edge proxy.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The configuration file.
    #[arg(
        short,
        long,
        env = "BRIDGECORE_CONFIG",
        default_value = "conf/bridgecore.yaml"
    )]
    config: PathBuf,
    /// Validate the configuration file and exit: 0 if valid, 1 with one `FILE:LINE:COL: message`
    /// line per problem otherwise.
    #[arg(short, long)]
    test: bool,
    /// Run in the background.
    #[arg(short, long)]
    daemon: bool,
    /// Take over the listeners of a running instance (graceful upgrade).
    #[arg(short, long)]
    upgrade: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            return ExitCode::from(1);
        }
    };
    for w in &config.warnings {
        log::warn!("{w}");
    }
    if cli.test {
        // Key files are read and parsed only when a generation is built: try it, so a key that
        // does not parse fails the check instead of the start.
        if let Err(e) = bridgecore::tokens::Tokens::build(&config.auth.jwt, None) {
            eprintln!("{}: {e}", cli.config.display());
            return ExitCode::from(1);
        }
        println!("{}: ok", cli.config.display());
        return ExitCode::SUCCESS;
    }
    match run(cli, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bridgecore: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    let mut conf = config.server.pingora_conf();
    conf.daemon = conf.daemon || cli.daemon;
    let opt = Opt {
        upgrade: cli.upgrade,
        daemon: conf.daemon,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    let bridgecore = BridgeCore::builder(config)
        .build()
        .context("building BridgeCore")?;
    let handle = bridgecore.add_to(&mut server);
    server.add_service(background_service(
        "config reload",
        ReloadOnHangup {
            path: cli.config,
            handle: handle.clone(),
        },
    ));
    // `run_forever` would exit the process as soon as the runtimes stopped, before the access
    // log's last lines (the grace period's) were written.
    server.run(RunArgs::default());
    handle.flush_access_log();
    Ok(())
}
