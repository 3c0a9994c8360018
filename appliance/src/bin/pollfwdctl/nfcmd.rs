//! The network-function commands of the CLI: built from each NF's operations (`appliance::ops::CliDoc`)
//! into clap subcommands with their help, and turned back into an operation and JSON arguments.

use appliance::ops::{ArgDoc as NfArg, CliDoc as NfCmd};
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory};
use serde_json::Value;

use crate::Cli;

/// Every network-function command: the CLI part of each NF's operations
/// (`appliance::ops::CliDoc`, in `appliance/src/nf/<name>/ops.rs`).
pub(crate) fn nf_cmds() -> impl Iterator<Item = &'static NfCmd> {
    appliance::dispatch::all()
        .into_iter()
        .filter_map(|o| o.cli.as_ref())
}

/// The groups the words of the NF commands form (`pollfwdctl route --help`), from each NF.
pub(crate) fn nf_groups() -> impl Iterator<Item = &'static (&'static [&'static str], &'static str)>
{
    appliance::registry::ALL
        .iter()
        .flat_map(|nf| nf.cli_groups().iter())
}

/// Id of the argument that takes what follows an NF command's words.
pub(crate) const NF_ARGS: &str = "args";

/// How the help writes an argument: `prefix=A.B.C.D/LEN`, optional ones in brackets.
pub(crate) fn nf_arg_synopsis(a: &NfArg) -> String {
    if a.required {
        format!("{}={}", a.key, a.value)
    } else {
        format!("[{}={}]", a.key, a.value)
    }
}

pub(crate) fn nf_synopsis(c: &NfCmd) -> String {
    let mut v = vec![c.words.join(" ")];
    v.extend(c.args.iter().map(nf_arg_synopsis));
    v.join(" ")
}

/// The clap command of one NF command: its words' last, the arguments and example in its
/// help, and one hidden argument that takes everything after the words as given.
pub(crate) fn nf_leaf(c: &NfCmd) -> Command {
    let header = Command::new("x").get_styles().get_header().to_owned();
    let h = |t: &str| format!("{}{t}{}", header.render(), header.render_reset());
    let mut tpl = String::from("{about-with-newline}\n{usage-heading} {usage}\n\n");
    if !c.args.is_empty() {
        tpl += &h("Arguments");
        tpl += " (key=value or --key value; the daemon checks them):\n";
        let w = c
            .args
            .iter()
            .map(|a| a.key.len() + a.value.len() + 1)
            .max()
            .unwrap_or(0);
        for a in c.args {
            let kv = format!("{}={}", a.key, a.value);
            let req = if a.required { " (required)" } else { "" };
            tpl += &format!("  {kv:<w$}  {}{req}\n", a.help);
        }
        tpl += "\n";
    }
    tpl += "{all-args}\n\n";
    tpl += &h("Example:");
    tpl += &format!("\n  {}\n", c.example);
    let usage: Vec<String> = c.args.iter().map(nf_arg_synopsis).collect();
    Command::new(*c.words.last().expect("words"))
        .about(c.about)
        // For the man pages (the help template above shows the same).
        .after_long_help(nf_args_text(c))
        .override_usage(format!(
            "pollfwdctl {} [OPTIONS] {}",
            c.words.join(" "),
            usage.join(" ")
        ))
        .help_template(tpl)
        .arg(
            Arg::new(NF_ARGS)
                .num_args(1..)
                .action(ArgAction::Append)
                .allow_hyphen_values(true)
                .hide(true),
        )
}

/// Arguments and example of an NF command as plain text (its man page).
pub(crate) fn nf_args_text(c: &NfCmd) -> String {
    let mut o = String::new();
    for a in c.args {
        let req = if a.required { " (required)" } else { "" };
        o += &format!("{}={}: {}{req}\n", a.key, a.value, a.help);
    }
    o + &format!("Example: {}", c.example)
}

/// The group command `words` (e.g. `nat static`) with every NF command below it.
pub(crate) fn nf_group(words: &'static [&'static str]) -> Command {
    let about = nf_groups()
        .find(|(w, _)| *w == words)
        .map_or("", |(_, a)| *a);
    let mut g = Command::new(*words.last().expect("words"))
        .about(about)
        .subcommand_required(true)
        .arg_required_else_help(true)
        // Words the CLI does not know go to the daemon as they are (it answers "unknown
        // command"), as for top-level words.
        .allow_external_subcommands(true)
        .external_subcommand_value_parser(clap::value_parser!(String));
    let mut seen: Vec<&str> = Vec::new();
    for c in nf_cmds().filter(|c| c.words.starts_with(words)) {
        let next = c.words[words.len()];
        if c.words.len() == words.len() + 1 {
            g = g.subcommand(nf_leaf(c));
        } else if !seen.contains(&next) {
            seen.push(next);
            g = g.subcommand(nf_group(&c.words[..=words.len()]));
        }
    }
    g
}

/// The top-level help's list of NF commands: synopsis and example of each.
pub(crate) fn nf_overview() -> String {
    let header = Command::new("x").get_styles().get_header().to_owned();
    let mut o = format!(
        "{}Network-function commands{} (arguments as key=value or --key value; `pollfwdctl route add --help` explains one; the daemon checks them):\n",
        header.render(),
        header.render_reset()
    );
    for c in nf_cmds() {
        o += &format!("  {}\n", nf_synopsis(c));
        // An example without arguments would only repeat the line.
        if c.example != format!("pollfwdctl {}", c.words.join(" ")) {
            o += &format!("      e.g. {}\n", c.example);
        }
    }
    o += "\nAny daemon command also as JSON: pollfwdctl call route.add '{\"prefix\": \"10.0.0.0/8\", \"via\": \"198.51.100.2\"}'\n";
    o += "What a running daemon answers: pollfwdctl commands";
    o
}

/// The whole CLI: the derived commands, then the NF groups.
pub(crate) fn command() -> Command {
    let mut cmd = Cli::command()
        .allow_external_subcommands(true)
        .external_subcommand_value_parser(clap::value_parser!(String))
        .after_help(nf_overview());
    let mut seen: Vec<&str> = Vec::new();
    for c in nf_cmds() {
        if !seen.contains(&c.words[0]) {
            seen.push(c.words[0]);
            cmd = cmd.subcommand(nf_group(&c.words[..1]));
        }
    }
    // The help lists the NF groups after `reload`, before the generic and lab commands.
    let generic = ["commands", "call", "gen-pcap", "completions", "man"];
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let (tail, head): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|n| generic.contains(&n.as_str()));
    for (i, n) in head.into_iter().chain(tail).enumerate() {
        cmd = cmd.mut_subcommand(n, |c| c.display_order(i));
    }
    cmd
}

/// The words and arguments of an NF command as typed (`["route", "add", "prefix=..."]`), or
/// `None` for a derived command.
pub(crate) fn nf_words(m: &ArgMatches) -> Option<Vec<String>> {
    let (name, mut cur) = m.subcommand()?;
    let mut words = vec![name.to_string()];
    // Down the subcommands first, then the leaf's values. Asking a group for an argument it
    // does not define is an error in debug builds but `Ok(None)` in release builds (clap checks
    // ids only with debug assertions), so the leaf is found by its having no subcommand.
    while let Some((n, s)) = cur.subcommand() {
        words.push(n.to_string());
        cur = s;
    }
    // An NF command's arguments, or what follows a word the CLI does not know (clap's
    // external subcommand, id "").
    for id in [NF_ARGS, ""] {
        if let Ok(Some(rest)) = cur.try_get_many::<String>(id) {
            words.extend(rest.cloned());
        }
    }
    Some(words)
}

/// Turns `["nat", "sessions", "--limit", "5", "inside=10.0.0.5"]` into
/// `("nat.sessions", {"limit": 5, "inside": "10.0.0.5"})`. Values that parse as JSON (numbers,
/// true/false, arrays, objects) are passed as such, anything else as a string.
pub(crate) fn nf_command(words: &[String]) -> Result<(String, Value), String> {
    let mut name = Vec::new();
    let mut args = serde_json::Map::new();
    let value =
        |v: &str| serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()));
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        if let Some(k) = w.strip_prefix("--") {
            if let Some((k, v)) = k.split_once('=') {
                args.insert(k.replace('-', "_"), value(v));
            } else if i + 1 < words.len() && !words[i + 1].starts_with("--") {
                args.insert(k.replace('-', "_"), value(&words[i + 1]));
                i += 1;
            } else {
                args.insert(k.replace('-', "_"), Value::Bool(true));
            }
        } else if let Some((k, v)) = w.split_once('=') {
            args.insert(k.to_string(), value(v));
        } else if args.is_empty() {
            name.push(w.as_str());
        } else {
            return Err(format!("'{w}': give arguments as key=value or --key value"));
        }
        i += 1;
    }
    if name.is_empty() {
        return Err("no command".into());
    }
    Ok((name.join("."), Value::Object(args)))
}
