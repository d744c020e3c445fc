//! Standard output that survives its reader going away. Once a write fails (a broken pipe),
//! nothing more is written there, and nothing panics.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

pub fn write(args: std::fmt::Arguments) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if out.write_fmt(args).and_then(|_| out.flush()).is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Whether colour is wanted: `--color`, then `NO_COLOR` / `CLICOLOR_FORCE`, then whether the
/// stream is a terminal (as cargo and ripgrep decide).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

static CHOICE: std::sync::OnceLock<ColorChoice> = std::sync::OnceLock::new();

pub fn set_color(choice: ColorChoice) {
    let _ = CHOICE.set(choice);
}

fn wanted(terminal: bool) -> bool {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty() && v != "0");
    match CHOICE.get().copied().unwrap_or_default() {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if set("NO_COLOR") => false,
        ColorChoice::Auto if set("CLICOLOR_FORCE") => true,
        ColorChoice::Auto => terminal && std::env::var("TERM").map_or(true, |t| t != "dumb"),
    }
}

/// Colour on standard output / standard error.
pub fn color_stdout() -> bool {
    use std::io::IsTerminal;
    wanted(std::io::stdout().is_terminal())
}
pub fn color_stderr() -> bool {
    use std::io::IsTerminal;
    wanted(std::io::stderr().is_terminal())
}

/// `text` in `style` when `on`.
pub fn paint(on: bool, style: anstyle::Style, text: impl std::fmt::Display) -> String {
    if on {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

/// The styles of the tool's output, as Terraform and cargo colour theirs.
pub mod style {
    use anstyle::{AnsiColor, Style};
    pub const ADD: Style = AnsiColor::Green.on_default();
    pub const CHANGE: Style = AnsiColor::Yellow.on_default();
    pub const REMOVE: Style = AnsiColor::Red.on_default();
    pub const ADOPT: Style = AnsiColor::Cyan.on_default();
    pub const ERROR: Style = AnsiColor::Red.on_default().bold();
    pub const WARN: Style = AnsiColor::Yellow.on_default().bold();
    pub const HELP: Style = AnsiColor::Cyan.on_default().bold();
    pub const OK: Style = AnsiColor::Green.on_default().bold();
    pub const BOLD: Style = Style::new().bold();
    pub const DIM: Style = Style::new().dimmed();
}

/// A message about a place in a source text, as rustc shows its own: the title, `--> path:line:col`,
/// the line with a caret and its label, then the help when there is one.
pub fn render_snippet(
    level: annotate_snippets::Level,
    title: &str,
    sn: &crate::error::Snippet,
    help: Option<&str>,
    color: bool,
) -> String {
    use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
    let span = sn.span.start.min(sn.text.len())..sn.span.end.min(sn.text.len());
    let mut groups = vec![
        level.primary_title(title).element(
            Snippet::source(&*sn.text)
                .path(&sn.path)
                .annotation(AnnotationKind::Primary.span(span).label(&sn.label)),
        ),
    ];
    if let Some(h) = help {
        groups.push(Group::with_title(Level::HELP.secondary_title(h)));
    }
    let r = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    r.render(&groups).to_string()
}

/// An error as people read it: with a snippet of the source and a caret when it has one
/// (rendered as rustc renders its own), else `error: where: what` and its help line.
pub fn report(e: &crate::error::Error) -> String {
    render_error(e, color_stderr())
}

pub fn render_error(e: &crate::error::Error, color: bool) -> String {
    if let Some(sn) = &e.snippet {
        let level = annotate_snippets::Level::ERROR;
        return render_snippet(level, &e.message, sn, e.help.as_deref(), color);
    }
    let mut out = format!("{}: ", paint(color, style::ERROR, "error"));
    if let Some(loc) = &e.location {
        out += &paint(color, style::BOLD, format!("{loc}: "));
    }
    out += &e.message;
    if let Some(h) = &e.help {
        out += &format!("\n  {}: {h}", paint(color, style::HELP, "help"));
    }
    out
}

/// "1 change", "2 changes".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Rows under a header, each column as wide as its widest cell; columns named in `right` are
/// right-aligned (numbers). The last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>], right: &[&str]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            match (i == last, right.contains(&header[i])) {
                (_, true) => s += &format!("{}{c}", " ".repeat(pad)),
                (true, false) => s += c,
                (false, false) => s += &format!("{c}{}", " ".repeat(pad)),
            }
            if i != last {
                s += "  ";
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out += &line(r.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_columns_are_as_wide_as_their_cells() {
        let rows = vec![
            vec![
                "bucket-replication".to_string(),
                "pr-1234-long-env".to_string(),
                "12".to_string(),
                "deployed".to_string(),
            ],
            vec![
                "s".to_string(),
                "-".to_string(),
                "0".to_string(),
                "not deployed".to_string(),
            ],
        ];
        let t = super::table(
            &["STACK", "ENV", "RESOURCES", "STATUS"],
            &rows,
            &["RESOURCES"],
        );
        assert_eq!(
            t,
            "STACK               ENV               RESOURCES  STATUS\n\
             bucket-replication  pr-1234-long-env         12  deployed\n\
             s                   -                         0  not deployed\n"
        );
    }
}
