//! pyro-nsc: the name server control tool, the counterpart of Pyro4's `nsc`.
//!
//! Same commands, options and output lines as `python -m Pyro4.nsc`; unlike Pyro4's tool it
//! exits non-zero when the command fails or the name server cannot be reached.

use clap::Parser;
use pyro_codec::pyrepr;
use pyro_codec::Value;
use pyro_runtime::blocking::{self, BlockingNameServer};
use pyro_runtime::naming::{ListFilter, Registration};
use pyro_runtime::Config;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

const COMMANDS: &str = "Commands:
  ping                       check that the name server answers
  list [prefix]              list registrations (with metadata), optionally by name prefix
  listmatching regex         list registrations whose name matches the regex
  listmeta_all tag...        list registrations that carry all of these metadata tags
  listmeta_any tag...        list registrations that carry any of these metadata tags
  lookup name                show the URI (and metadata) registered under a name
  register name uri          register a name (fails if the name exists)
  remove name                remove a name
  removematching regex       remove every name matching the regex (asks for confirmation)
  setmeta name [tag...]      replace the metadata of a name (no tags: clear it)
Pyro5's names yplookup_all and yplookup_any are accepted for listmeta_all and listmeta_any.

Exit status: 0 on success, 1 when the command failed (unknown name, name server error),
2 on bad usage, 3 when the name server could not be located.
The HMAC key can also come from the PYRO_HMAC_KEY environment variable.";

/// Name server control tool (Pyro4 nsc compatible).
#[derive(Parser, Debug)]
#[command(name = "pyro-nsc", version, about, after_help = COMMANDS)]
struct Args {
    /// Hostname of the name server (default: PYRO_NS_HOST, then broadcast discovery).
    #[arg(short = 'n', long = "host")]
    host: Option<String>,
    /// Port of the name server (or the broadcast port if no host is given).
    #[arg(short = 'p', long = "port")]
    port: Option<u16>,
    /// Unix domain socket name of the name server.
    #[arg(short = 'u', long = "unixsocket")]
    unixsocket: Option<String>,
    /// The HMAC key to use (prefer the PYRO_HMAC_KEY environment variable).
    #[arg(short = 'k', long = "key")]
    key: Option<String>,
    /// Verbose output.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Answer yes to the removematching confirmation.
    #[arg(short = 'y', long = "yes")]
    yes: bool,
    /// The command and its arguments.
    #[arg(required = true, num_args = 1.., value_name = "COMMAND [ARGS]")]
    command: Vec<String>,
}

/// A failure with the exit status it maps to.
struct Failure {
    code: u8,
    message: String,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

fn failed(e: pyro_runtime::Error) -> Failure {
    // Pyro4's nsc prints "Error: <ExceptionClass> - <message>".
    let text = match e.remote() {
        Some(remote) => remote.message(),
        None => e.to_string(),
    };
    Failure {
        code: 1,
        message: format!("Error: {} - {}", e.class_name(), text),
    }
}

fn main() -> ExitCode {
    pyro_cli::init_logging("warn");
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run(args: &Args) -> Result<(), Failure> {
    let command = canonical(&args.command[0]).ok_or_else(|| {
        usage(format!(
            "pyro-nsc: invalid command '{}'\n\n{COMMANDS}",
            args.command[0]
        ))
    })?;
    check_arity(command, &args.command[1..])?;

    let key = pyro_cli::hmac_key(args.key.clone()).map_err(usage)?;
    let config = Arc::new(Config::from_env().map_err(|e| usage(format!("error: {e}")))?);

    if args.verbose {
        println!("Locating name server...");
    }
    let host = args
        .unixsocket
        .as_ref()
        .map(|u| format!("./u:{u}"))
        .or_else(|| args.host.clone());
    let mut ns = blocking::locate_ns(&config, host.as_deref(), args.port, true, key.as_deref().map(str::as_bytes))
        .map_err(|e| Failure {
            code: 3,
            message: format!(
                "Error: {e}\n(is a name server running? give its address with -n HOST -p PORT or PYRO_NS_HOST)"
            ),
        })?;
    if args.verbose {
        println!("Name server found: {}", ns.inner_mut().proxy().uri());
    }
    handle(&mut ns, command, &args.command[1..], args.yes)?;
    if args.verbose {
        println!("Done.");
    }
    Ok(())
}

/// The command name, with Pyro5's aliases mapped to Pyro4's.
fn canonical(name: &str) -> Option<&'static str> {
    Some(match name {
        "ping" => "ping",
        "list" => "list",
        "listmatching" => "listmatching",
        "listmeta_all" | "yplookup_all" => "listmeta_all",
        "listmeta_any" | "yplookup_any" => "listmeta_any",
        "lookup" => "lookup",
        "register" => "register",
        "remove" => "remove",
        "removematching" => "removematching",
        "setmeta" => "setmeta",
        _ => return None,
    })
}

/// Argument counts, with Pyro4's messages.
fn check_arity(command: &str, rest: &[String]) -> Result<(), Failure> {
    let n = rest.len();
    let problem = match command {
        "ping" if n != 0 => Some("takes no arguments"),
        "list" if n > 1 => Some("takes at most one argument: prefix"),
        "listmatching" | "removematching" if n != 1 => Some("requires one argument: pattern"),
        "lookup" | "remove" if n != 1 => Some("requires one argument: name"),
        "register" if n != 2 => Some("requires two arguments: name uri"),
        "setmeta" if n < 1 => Some("requires at least 2 arguments: uri and zero or more meta tags"),
        "listmeta_all" | "listmeta_any" if n < 1 => {
            Some("requires at least one metadata tag argument")
        }
        _ => None,
    };
    match problem {
        Some(p) => Err(usage(format!("{command}: {p}"))),
        None => Ok(()),
    }
}

fn handle(
    ns: &mut BlockingNameServer,
    command: &str,
    rest: &[String],
    yes: bool,
) -> Result<(), Failure> {
    match command {
        "ping" => {
            ns.ping().map_err(failed)?;
            println!("Name server ping ok.");
        }
        "list" => match rest.first() {
            None => print_list(
                &ns.list_with_metadata(&ListFilter::All).map_err(failed)?,
                "",
            ),
            Some(prefix) => print_list(
                &ns.list_with_metadata(&ListFilter::Prefix(prefix.clone()))
                    .map_err(failed)?,
                &format!("- prefix '{prefix}'"),
            ),
        },
        "listmatching" => {
            let regex = &rest[0];
            let regs = ns
                .list_with_metadata(&ListFilter::Regex(regex.clone()))
                .map_err(failed)?;
            print_list(&regs, &format!("- regex '{regex}'"));
        }
        "listmeta_all" => {
            let regs = ns
                .list_with_metadata(&ListFilter::MetadataAll(rest.to_vec()))
                .map_err(failed)?;
            print_list(&regs, " - searched by metadata");
        }
        "listmeta_any" => {
            let regs = ns
                .list_with_metadata(&ListFilter::MetadataAny(rest.to_vec()))
                .map_err(failed)?;
            print_list(&regs, " - searched by metadata");
        }
        "lookup" => {
            let (uri, metadata) = ns.lookup_with_metadata(&rest[0]).map_err(failed)?;
            println!("{uri}");
            if !metadata.is_empty() {
                println!("metadata: {}", tags_repr(&metadata));
            }
        }
        "register" => {
            ns.register(&rest[0], &rest[1], true, None)
                .map_err(failed)?;
            println!("Registered {}", rest[0]);
        }
        "remove" => {
            let count = ns.remove(Some(&rest[0]), None, None).map_err(failed)?;
            if count > 0 {
                println!("Removed {}", rest[0]);
            } else {
                // Pyro4 reports this as success too; a script can tell by the text.
                println!("Nothing removed");
            }
        }
        "removematching" => {
            if !yes && !confirm() {
                println!("Nothing removed");
                return Ok(());
            }
            let count = ns.remove(None, None, Some(&rest[0])).map_err(failed)?;
            println!("{count} items removed.");
        }
        "setmeta" => {
            let tags = &rest[1..];
            ns.set_metadata(&rest[0], tags).map_err(failed)?;
            println!(
                "{}",
                if tags.is_empty() {
                    "Metadata cleared"
                } else {
                    "Metadata updated"
                }
            );
        }
        other => return Err(usage(format!("invalid command '{other}'"))),
    }
    Ok(())
}

/// Pyro4 asks before a regex removal; anything but y/Y declines.
fn confirm() -> bool {
    print!("Potentially removing lots of items from the Name server. Are you sure (y/n)?");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y")
}

/// Pyro4's printListResult: sorted by name, metadata shown as a Python list repr.
fn print_list(regs: &[Registration], title: &str) {
    let mut sorted: Vec<&Registration> = regs.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    println!("--------START LIST {title}");
    for r in sorted {
        println!("{} --> {}", r.name, r.uri);
        if !r.metadata.is_empty() {
            println!("    metadata: {}", tags_repr(&r.metadata));
        }
    }
    println!("--------END LIST {title}");
}

/// Metadata tags as Python prints the list the name server returns.
fn tags_repr(tags: &[String]) -> String {
    pyrepr::repr(&Value::List(
        tags.iter().map(|t| Value::str(t.as_str())).collect(),
    ))
}
