//! `deploy completions` and `deploy man`: generated from the command-line definition.

use crate::cli::{Global, Run};
use crate::error::Result;
use clap::Args;

/// `deploy completions`'s command line.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[async_trait::async_trait(?Send)]
impl Run for CompletionsArgs {
    async fn run(&self, _: &Global) -> Result<()> {
        let mut buf = Vec::new();
        let mut cli = <crate::cli::Cli as clap::CommandFactory>::command();
        clap_complete::generate(self.shell, &mut cli, "deploy", &mut buf);
        outp!("{}", String::from_utf8_lossy(&buf));
        Ok(())
    }
}

/// `deploy man`'s command line.
#[derive(Debug, Clone, Args)]
pub struct ManArgs;

#[async_trait::async_trait(?Send)]
impl Run for ManArgs {
    async fn run(&self, _: &Global) -> Result<()> {
        let mut buf = Vec::new();
        let cli = <crate::cli::Cli as clap::CommandFactory>::command();
        clap_mangen::Man::new(cli).render(&mut buf)?;
        outp!("{}", String::from_utf8_lossy(&buf));
        Ok(())
    }
}
