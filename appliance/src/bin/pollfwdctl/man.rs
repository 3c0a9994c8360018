//! The man page pollfwdctl(1) (and one page per command), built from the clap definition.

use std::io::Write;

use clap_mangen::Man;

use crate::nfcmd::{command, nf_cmds, nf_synopsis};

/// The man page pollfwdctl(1): clap's sections, with the NF commands (synopsis, what it
/// does, example) in a section of their own instead of the help's plain-text list.
pub(crate) fn man_page() -> Vec<u8> {
    use clap_mangen::roff::{Roff, bold, italic, roman};
    let cmd = command().after_help("").after_long_help("");
    let m = clap_mangen::Man::new(cmd);
    let mut out = Vec::new();
    let mut nf = Roff::new();
    nf.control("SH", ["NETWORK-FUNCTION COMMANDS"]).text([roman(
        "Arguments are given as key=value or --key value and checked by the daemon; \
         \"pollfwdctl WORDS --help\" explains each. Any daemon command can also be sent as \
         JSON: pollfwdctl call route.add '{\"prefix\": \"10.0.0.0/8\", \"via\": \"198.51.100.2\"}'.",
    )]);
    for c in nf_cmds() {
        nf.control("TP", [] as [&str; 0])
            .text([bold(nf_synopsis(c))])
            .text([roman(c.about)]);
        for a in c.args {
            let req = if a.required { " (required)" } else { "" };
            nf.control("br", [] as [&str; 0]).text([
                italic(format!("{}={}", a.key, a.value)),
                roman(format!(": {}{req}", a.help)),
            ]);
        }
        nf.control("br", [] as [&str; 0])
            .text([roman(format!("Example: {}", c.example))]);
    }
    for part in [
        Man::render_title,
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
        Man::render_subcommands_section,
    ] {
        part(&m, &mut out).expect("write to memory");
    }
    nf.to_writer(&mut out).expect("write to memory");
    m.render_version_section(&mut out).expect("write to memory");
    // Each part starts with the same two-line preamble (the apostrophe string): keep the first.
    let text = String::from_utf8(out).expect("roff is UTF-8");
    let mut lines: Vec<&str> = Vec::new();
    for l in text.lines() {
        if !(l.starts_with(".ie \\n(.g .ds Aq") || l.starts_with(".el .ds Aq")) || lines.len() < 2 {
            lines.push(l);
        }
    }
    (lines.join("\n") + "\n").into_bytes()
}

/// The man page on stdout, or one page per command into `dir`.
pub(crate) fn man(dir: Option<&std::path::Path>) -> Result<(), String> {
    let Some(d) = dir else {
        return std::io::stdout()
            .write_all(&man_page())
            .map_err(|e| e.to_string());
    };
    let err = |e: std::io::Error| format!("{}: {e}", d.display());
    std::fs::create_dir_all(d).map_err(err)?;
    clap_mangen::generate_to(command(), d).map_err(err)?;
    std::fs::write(d.join("pollfwdctl.1"), man_page()).map_err(err)
}
