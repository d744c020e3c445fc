//! `deploy`: parse the command line, dispatch, report the one error (if any) and exit with its
//! documented code. Everything else lives in the modules below.

/// `println!` for stdout, except that a closed stdout (its reader gone: `deploy ... | head`)
/// ends the output quietly instead of the process: the work goes on, state is recorded, and
/// the exit code is the documented one (as ripgrep treats a broken pipe).
macro_rules! outln {
    () => { $crate::output::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` for stdout, with `outln!`'s handling of a closed stdout.
macro_rules! outp {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*)) };
}

mod output;

mod apply;
mod asl;
mod aws;
mod cli;
mod commands;
mod cost;
mod diagram;
mod engine;
mod error;
mod execution;
mod files;
mod github;
mod graph;
mod interrupt;
mod local;
mod manifest;
mod options;
mod package;
mod plan;
mod refactor;
mod resources;
mod saved_plan;
mod sdk;
mod secrets;
mod state;
mod template;
mod throttle;
mod validate;
mod views;

use clap::{CommandFactory, FromArgMatches};
use cli::{Cli, Command};

fn init_logging(verbose: u8, server: bool) {
    let filter = match verbose {
        // a server says what it does: one line per execution started and ended
        0 if server => "deploy=info,warn,aws_config=error",
        0 => "warn,aws_config=error",
        1 => "deploy=debug,warn",
        _ => "debug",
    };
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_string());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let sub = matches.subcommand().map(|(_, m)| m).unwrap_or(&matches);
    cli.global.env_given = sub
        .value_source("env")
        .is_some_and(|s| s != clap::parser::ValueSource::DefaultValue);
    if let Some(branch) = cli.global.env_from_branch.take() {
        cli.global.env = manifest::env_for_branch(&branch);
        let b = branch.trim();
        cli.global.branch = Some(b.strip_prefix("refs/heads/").unwrap_or(b).to_string());
        cli.global.env_given = true;
    }
    output::set_color(cli.global.color);
    aws::use_endpoint_flag(&cli.global.aws);
    init_logging(cli.global.verbose, matches!(cli.command, Command::Local(_)));
    let json = cli.command.args().format() == options::Format::Json;
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    // A lock dropped unreleased (a panic unwinding through a run) is released in the
    // background: wait for that before the process ends, then let the panic go on.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(cli.command.args().run(&cli.global))
    }));
    rt.block_on(state::settle());
    let ran = ran.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    if let Err(e) = ran {
        eprintln!("{}", output::report(&e));
        if json && !e.in_output {
            let doc = serde_json::json!({"event": "error", "error": {
                "message": e.message, "location": e.location, "help": e.help, "exit_code": e.exit_code()}});
            outln!("{}", views::json_doc(doc));
        }
        std::process::exit(e.exit_code());
    }
}
