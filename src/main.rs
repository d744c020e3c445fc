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
mod aws;
mod cli;
mod commands;
mod diagram;
mod engine;
mod error;
mod execution;
mod graph;
mod local;
mod manifest;
mod package;
mod plan;
mod planview;
mod resources;
mod secrets;
mod state;
mod template;
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

async fn run(cli: Cli) -> error::Result<()> {
    let g = &cli.global;
    match &cli.command {
        Command::Up {
            select,
            vars,
            apply,
            out,
            ttl,
        } => commands::deploy::up(g, select, vars, apply, out, *ttl).await,
        Command::Envs { out } => commands::envs::envs(g, out).await,
        Command::Sweep {
            older_than,
            include_default,
            orphans,
            apply,
            out,
        } => commands::envs::sweep(g, *older_than, *include_default, *orphans, apply, out).await,
        Command::Plan {
            select,
            vars,
            out,
            detailed_exitcode,
        } => {
            let changes = commands::deploy::plan(g, select, vars, out).await;
            match (*detailed_exitcode, changes) {
                (true, Ok(true)) => std::process::exit(2),
                (true, Err(e)) => Err(error::Error {
                    class: error::Class::Internal,
                    ..e
                }), // exit 1, as Terraform
                (_, r) => r.map(|_| ()),
            }
        }
        Command::EnvName { branch } => {
            outln!("{}", manifest::env_for_branch(branch));
            Ok(())
        }
        Command::Destroy {
            stacks,
            vars,
            apply,
            out,
        } => commands::deploy::destroy(g, stacks, vars, apply, out).await,
        Command::Import {
            stack,
            resource,
            vars,
        } => commands::deploy::import(g, stack, resource, vars).await,
        Command::Unlock { stack } => commands::deploy::unlock(g, stack).await,
        Command::List { out } => commands::info::list(g, out).await,
        Command::Outputs { stack, name, out } => {
            commands::info::outputs(g, stack, name.as_deref(), out).await
        }
        Command::Render { stack, vars } => commands::info::render(g, stack, vars).await,
        Command::Test {
            stack,
            scenario,
            mock_config,
            input,
            out,
            junit,
        } => match mock_config {
            Some(f) => commands::test::test_mock_config(g, stack, f, input, out.format).await,
            None => {
                commands::test::test(g, stack, scenario.as_deref(), out.format, junit.as_deref())
                    .await
            }
        },
        Command::Policy {
            stack,
            machine,
            vars,
        } => commands::validate::policy(g, stack, machine.as_deref(), vars).await,
        Command::Validate {
            select,
            files,
            vars,
            out,
        } => commands::validate::validate(g, select, files, vars, out.format).await,
        Command::Graph {
            stack,
            format,
            out,
            machine,
            execution,
            resources,
            vars,
        } => {
            let args = commands::graph::GraphArgs {
                stack,
                format: *format,
                out: out.as_deref(),
                machine: machine.as_deref(),
                execution: execution.as_deref(),
                resources: *resources,
                vars,
            };
            commands::graph::graph(g, args).await
        }
        Command::Run {
            stack,
            machine,
            input,
            input_file,
            name,
            no_wait,
            out,
        } => {
            let args = commands::workflow::RunArgs {
                stack,
                machine: machine.as_deref(),
                input: input.as_deref(),
                input_file: input_file.as_deref(),
                name: name.as_deref(),
                no_wait: *no_wait,
                format: out.format,
            };
            commands::workflow::run(g, args).await
        }
        Command::Executions {
            stack,
            machine,
            out,
        } => commands::workflow::executions(g, stack, machine.as_deref(), out.format).await,
        Command::History { execution_arn, out } => {
            commands::workflow::history(g, execution_arn, out.format).await
        }
        Command::Local {
            host,
            port,
            http_endpoint,
            mock_config,
            time_scale,
        } => {
            let args = local::LocalArgs {
                host: host.clone(),
                port: *port,
                http_endpoint: http_endpoint.clone(),
                mock_config: mock_config.clone(),
                time_scale: *time_scale,
            };
            local::serve(g, args).await
        }
        Command::Approve {
            waiting,
            task_output,
        } => commands::workflow::approve(g, waiting, task_output).await,
        Command::Reject {
            waiting,
            error,
            cause,
        } => commands::workflow::reject(g, waiting, error.as_deref(), cause.as_deref()).await,
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(
                *shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "deploy",
                &mut buf,
            );
            outp!("{}", String::from_utf8_lossy(&buf));
            Ok(())
        }
        Command::Man => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut buf)?;
            outp!("{}", String::from_utf8_lossy(&buf));
            Ok(())
        }
    }
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
        cli.global.env_given = true;
    }
    output::set_color(cli.global.color);
    aws::use_endpoint_flag(&cli.global.aws);
    init_logging(
        cli.global.verbose,
        matches!(cli.command, Command::Local { .. }),
    );
    if let Err(m) = cli.command.check_format() {
        eprintln!("error: {m}");
        std::process::exit(2);
    }
    let json = cli.command.json();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    if let Err(e) = rt.block_on(run(cli)) {
        eprintln!("{}", output::report(&e));
        if json {
            let doc = serde_json::json!({"event": "error", "error": {
                "message": e.message, "location": e.location, "help": e.help, "exit_code": e.exit_code()}});
            outln!("{}", views::json_doc(doc));
        }
        std::process::exit(e.exit_code());
    }
}
