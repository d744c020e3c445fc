//! `deploy`: parse the command line, dispatch, report the one error (if any) and exit with its
//! documented code. Everything else lives in the modules below.

mod apply;
mod aws;
mod cli;
mod commands;
mod error;
mod graph;
mod manifest;
mod package;
mod plan;
mod resources;
mod state;
mod template;
mod views;

use clap::Parser;
use cli::{Cli, Command};

fn init_logging(verbose: u8) {
    let filter = match verbose {
        0 => "warn,aws_config=error",
        1 => "deploy=debug,warn",
        _ => "debug",
    };
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_string());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

async fn run(cli: Cli) -> error::Result<()> {
    let g = &cli.global;
    match &cli.command {
        Command::Up { select, vars, apply, out } => commands::deploy::up(g, select, vars, apply, out).await,
        Command::Plan { select, vars, out } => commands::deploy::plan(g, select, vars, out).await,
        Command::Destroy { stacks, apply, out } => commands::deploy::destroy(g, stacks, apply, out).await,
        Command::List { out } => commands::info::list(g, out),
        Command::Outputs { stack, out } => commands::info::outputs(g, stack, out),
        Command::Render { stack, vars } => commands::info::render(g, stack, vars),
    }
}

fn main() {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    if let Err(e) = rt.block_on(run(cli)) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
