//! The text `offramp` generates about itself: shell completion scripts and the man
//! page, both from the clap definitions in `cli`.

use std::process::ExitCode;

use super::Cli;

/// `offramp completions SHELL`: the completion script on stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "offramp", &mut script);
    write_stdout(&script, "the completion script")
}

/// `offramp man`: the man page (roff) on stdout.
pub(super) fn man() -> ExitCode {
    let mut page = Vec::new();
    match man_page(&mut page) {
        Ok(()) => write_stdout(&page, "the man page"),
        Err(e) => {
            eprintln!("offramp: cannot render the man page: {e}");
            ExitCode::from(1)
        }
    }
}

/// Writes generated text to stdout; a reader that stopped early (`| head`) is not an
/// error.
fn write_stdout(text: &[u8], what: &str) -> ExitCode {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("offramp: cannot write {what}: {e}");
            ExitCode::from(1)
        }
    }
}

/// The man page: `offramp(1)` with every command, its synopsis, description and
/// options in one page (clap_mangen alone renders the top level only and refers to
/// per-command pages).
fn man_page(w: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Write as _;
    // Not built: built subcommands would repeat every global option.
    let cmd = <Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    writeln!(w, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("offramp {}", sub.get_name());
        writeln!(w, ".SS \"{name}\"")?;
        let sub = sub.clone().bin_name(name);
        let has_args = sub.get_arguments().any(|a| !a.is_hide_set());
        let sub_man = clap_mangen::Man::new(sub);
        // Each section's own `.SH` heading becomes a paragraph break: they are parts
        // of this command.
        let mut part = Vec::new();
        sub_man.render_synopsis_section(&mut part)?;
        sub_man.render_description_section(&mut part)?;
        if has_args {
            sub_man.render_options_section(&mut part)?;
        }
        for line in part.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".SH ") {
                writeln!(w, ".PP")?;
            } else {
                w.write_all(line)?;
            }
        }
    }
    man.render_version_section(w)?;
    Ok(())
}
