// A CLI prints: standard output is this crate's interface. It all goes
// through `write_stdout` below, which handles a closed pipe instead of
// panicking as `println!` would.
#![allow(clippy::print_stdout)]
#![forbid(unsafe_code)]

//! `medsched`: bookable slots, explanations, conflict checks and recurrence
//! expansion from a clinic file, and access-policy checks and decisions, on
//! the command line.

mod cmd;
mod error;
mod input;
mod render;

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::{one_line, CliError, EXIT_INPUT, EXIT_IO};
use crate::render::Out;

const EXIT_CODES: &str = "\
Exit status:
  0  success (for `check`: every occurrence is bookable)
  1  I/O error: a file cannot be read (error[io_error])
  2  bad input: unknown zone or id, invalid RRULE, end before start,
     malformed file, bad timestamp or flag (error[<code>])
  3  `check` only: at least one occurrence conflicts
  4  a defect in medsched (error[internal_error]); please report it

Errors are one line on standard error: `error[<code>]: <message>`, with the
codes of docs/error-codes.md.

Timestamps (T) are RFC 3339 with any offset (`2027-03-01T09:00:00-05:00`,
`2027-03-01T14:00:00Z`) or a bare date (`2027-03-01`, meaning 00:00 UTC).
Clinic files are TOML when the name ends in `.toml`, JSON otherwise.";

const CHECK_ABOUT: &str = "Check a proposed appointment or recurring series for conflicts.

FILE (JSON, or TOML by extension) holds either a proposal
  {\"type\": \"visit\", \"start\": \"2027-03-15T14:00:00Z\", \"resources\": [\"dr-a\"], \"patient\": \"p1\"}
or, when it has an `rrule` key, a series
  {\"type\": \"visit\", \"zone\": \"America/New_York\", \"dtstart\": \"2027-03-01T10:00:00\",
   \"rrule\": \"FREQ=WEEKLY;COUNT=10\", \"resources\": [\"dr-a\"]}
Exits 0 when every occurrence is bookable and 3 when any conflicts.";

#[derive(Debug, Parser)]
#[command(
    name = "medsched",
    version,
    about = "Clinic scheduling from a clinic file: slots, explanations, conflict checks, recurrence expansion; access policy checks and decisions",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List bookable slots of an appointment type in a window.
    #[command(after_help = EXIT_CODES)]
    Slots(SlotsArgs),
    /// Explain whether one resource can take one start, and why not.
    #[command(after_help = EXIT_CODES)]
    Explain(ExplainArgs),
    /// Check a proposed appointment or recurring series for conflicts.
    #[command(after_help = EXIT_CODES, long_about = CHECK_ABOUT)]
    Check(CheckArgs),
    /// Expand iCalendar recurrence lines (DTSTART, RRULE, RDATE, EXDATE).
    #[command(after_help = EXIT_CODES)]
    Expand(ExpandArgs),
    /// Show a built-in demo clinic: a fortnight of availability across a DST
    /// change, then one explained conflict.
    Demo,
    /// Validate an access policy, or decide one request against it.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Panics inside a command, to show the panic becomes
    /// `error[internal_error]` (a test aid; hidden from help).
    #[command(hide = true, name = "debug-panic")]
    DebugPanic,
}

const POLICY_EXIT_CODES: &str = "\
Exit status:
  0  success (for `decide`: whether the request is allowed or not)
  1  I/O error: a file cannot be read (error[io_error])
  2  bad input: invalid policy (error[policy_invalid], naming the place),
     malformed file (error[malformed_document]), unknown action, bad
     timestamp or flag (error[invalid_input])

Errors are one line on standard error: `error[<code>]: <message>`, with the
codes of docs/error-codes.md. Policy files are TOML (see
fixtures/policy-clinic.toml).";

const POLICY_DECIDE_ABOUT: &str = "Decide whether a principal may do an action on a target.

PRINCIPAL (JSON, or TOML by extension) is who asks:
  {\"user\": \"u1\", \"tenant\": \"riverside\", \"roles\": [\"provider\"],
   \"patient\": null, \"resources\": [\"dr-a\"], \"departments\": [\"cardio\"],
   \"guardianships\": [{\"patient\": \"p2\", \"from\": \"2027-01-01T00:00:00Z\", \"until\": null}],
   \"elevations\": [{\"patient\": \"p1\", \"reason\": \"er\",
     \"granted_at\": \"2027-03-01T09:00:00Z\", \"expires_at\": \"2027-03-01T13:00:00Z\"}]}
  (only `user` and `tenant` are required; in TOML, write times as quoted
  RFC 3339 strings)
TARGET (JSON, or TOML by extension) is the appointment it is about:
  {\"tenant\": \"riverside\", \"patient\": \"p1\", \"resources\": [\"dr-a\"], \"departments\": [\"cardio\"]}
ACTION is one of: slots.read, appointment.read, phi.read, appointment.book,
  appointment.cancel, appointment.reschedule, appointment.status,
  appointment.overbook, booking.bypass_notice, waitlist.manage, outbox.drain,
  catalog.manage, audit.read

Prints one JSON object:
  {\"allowed\": bool, \"rule\": {\"role\", \"effect\", \"action\", \"scope\"} or null,
   \"reason\": \"no_grant\" | \"explicit_deny\" | \"cross_tenant\" | null,
   \"break_glass\": bool, \"policy_version\": \"...\"}
and exits 0 whether the request is allowed or not. A role of the principal
that the policy does not define grants nothing; a note on standard error
names it.";

/// The `policy` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Validate a policy file and list its version, roles and break-glass settings.
    #[command(after_help = POLICY_EXIT_CODES)]
    Check(PolicyCheckArgs),
    /// Decide whether a principal may do an action on a target.
    #[command(after_help = POLICY_EXIT_CODES, long_about = POLICY_DECIDE_ABOUT)]
    Decide(PolicyDecideArgs),
}

/// Output formats of `slots`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SlotFormat {
    /// Per resource and local day, the start times in the resource's zone.
    Text,
    /// `resource_id,slot_start` lines (UTC), no header.
    Csv,
    /// An array of `{resource, start, end}` (UTC).
    Json,
}

/// Output formats of `explain` and `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// Readable lines.
    Text,
    /// One JSON document.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct SlotsArgs {
    /// Clinic file (JSON, or TOML by extension).
    pub(crate) clinic: String,
    /// Appointment type id.
    #[arg(long = "type", value_name = "ID")]
    pub(crate) type_id: String,
    /// Window start: slots start at or after it.
    #[arg(long, value_name = "T")]
    pub(crate) from: String,
    /// Window end: slots start before it.
    #[arg(long, value_name = "T")]
    pub(crate) to: String,
    /// Only these resources may be assigned (repeatable; all eligible when absent).
    #[arg(long = "resource", value_name = "ID")]
    pub(crate) resources: Vec<String>,
    /// The current instant, from which notice and horizon count. Defaults
    /// to --from (the scheduling core never reads the clock).
    #[arg(long, value_name = "T")]
    pub(crate) now: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SlotFormat::Text)]
    pub(crate) format: SlotFormat,
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// Clinic file (JSON, or TOML by extension).
    pub(crate) clinic: String,
    /// Appointment type id.
    #[arg(long = "type", value_name = "ID")]
    pub(crate) type_id: String,
    /// Resource id.
    #[arg(long, value_name = "ID")]
    pub(crate) resource: String,
    /// The start to explain.
    #[arg(long, value_name = "T")]
    pub(crate) at: String,
    /// The current instant. Defaults to this machine's clock.
    #[arg(long, value_name = "T")]
    pub(crate) now: Option<String>,
    /// A patient id, to report the patient's overlapping appointments too.
    #[arg(long, value_name = "ID")]
    pub(crate) patient: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Clinic file (JSON, or TOML by extension).
    pub(crate) clinic: String,
    /// Proposal or series file (JSON, or TOML by extension).
    pub(crate) file: String,
    /// The current instant. Defaults to this machine's clock.
    #[arg(long, value_name = "T")]
    pub(crate) now: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
}

#[derive(Debug, Args)]
pub(crate) struct ExpandArgs {
    /// File of iCalendar lines; standard input when absent or `-`.
    pub(crate) file: Option<String>,
    /// Occurrences at or after this instant. Defaults to DTSTART.
    #[arg(long, value_name = "T")]
    pub(crate) from: Option<String>,
    /// Occurrences before this instant. Defaults to --from plus 400 days.
    #[arg(long, value_name = "T")]
    pub(crate) to: Option<String>,
    /// Most occurrences printed; a note on standard error says when more exist.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub(crate) limit: usize,
    /// Drop occurrences whose wall time falls in a DST gap, instead of
    /// shifting them forward by the gap (RFC 5545).
    #[arg(long)]
    pub(crate) skip_nonexistent: bool,
    /// IANA zone for a floating DTSTART (no TZID, no `Z`). Defaults to UTC.
    #[arg(long, value_name = "ZONE")]
    pub(crate) tz: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PolicyCheckArgs {
    /// Policy file (TOML).
    pub(crate) policy: String,
}

#[derive(Debug, Args)]
pub(crate) struct PolicyDecideArgs {
    /// Policy file (TOML).
    pub(crate) policy: String,
    /// Principal file (JSON, or TOML by extension): who asks.
    #[arg(long, value_name = "FILE")]
    pub(crate) principal: String,
    /// Action name from the policy vocabulary (`phi.read`, `appointment.book`, ...).
    #[arg(long, value_name = "ACTION")]
    pub(crate) action: String,
    /// Target file (JSON, or TOML by extension): the appointment it is about.
    #[arg(long, value_name = "FILE")]
    pub(crate) target: String,
    /// The current instant, against which guardianships and break-glass
    /// elevations are checked. Defaults to this machine's clock (the policy
    /// core never reads it; this command does).
    #[arg(long, value_name = "T")]
    pub(crate) now: Option<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(&e),
    };
    // A panic is a defect: it ends as one `error[internal_error]` line,
    // and the default hook's message (which may quote input) is not shown.
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(move || run(cli.command)).unwrap_or_else(|_| {
        Err(CliError::Core(medsched_core::Error::internal(
            "a panic was caught in the command line tool",
        )))
    });
    match result {
        Ok(out) => finish(out),
        Err(e) => report(&e),
    }
}

fn run(command: Command) -> Result<Out, CliError> {
    match command {
        Command::Slots(a) => cmd::slots::run(&a),
        Command::Explain(a) => cmd::explain::run(&a),
        Command::Check(a) => cmd::check::run(&a),
        Command::Expand(a) => cmd::expand::run(&a),
        Command::Demo => cmd::demo::run(),
        Command::Policy(PolicyCommand::Check(a)) => cmd::policy::check(&a),
        Command::Policy(PolicyCommand::Decide(a)) => cmd::policy::decide(&a),
        #[allow(clippy::panic)]
        Command::DebugPanic => panic!("medsched debug-panic"),
    }
}

/// Writes a command's output and notes; returns its exit status.
fn finish(out: Out) -> ExitCode {
    let written = write_stdout(&out.text).and_then(|()| match out.body {
        Some(body) => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            match (body.0)(&mut w).and_then(|()| w.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other,
            }
        }
        None => Ok(()),
    });
    if let Err(e) = written {
        return report(&CliError::Io {
            what: "standard output".into(),
            detail: one_line(&e.to_string()),
        });
    }
    let mut err = std::io::stderr().lock();
    for note in &out.notes {
        // Nothing better to do when standard error is gone.
        let _ = writeln!(err, "note: {note}");
    }
    ExitCode::from(out.status)
}

fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Prints `error[<code>]: <message>` on one line; returns the exit status.
fn report(e: &CliError) -> ExitCode {
    let _ = writeln!(std::io::stderr().lock(), "error[{}]: {e}", e.code());
    e.exit_code()
}

/// Help and version go to standard output with status 0; a usage error
/// becomes one `error[invalid_input]` line with status 2.
fn clap_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let status = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                EXIT_INPUT
            } else {
                0
            };
            if write_stdout(&e.render().to_string()).is_err() {
                return ExitCode::from(EXIT_IO);
            }
            ExitCode::from(status)
        }
        _ => {
            let text = e.render().to_string();
            let first = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("invalid command line");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            report(&CliError::Input(format!(
                "{} (see `medsched --help`)",
                first.replace('\'', "`")
            )))
        }
    }
}
