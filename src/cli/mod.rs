//! The command line: one file per subcommand with its arguments and output formatting.
//! `run` maps results to exit codes: 0 success, 1 a failed check, 2 usage or environment error.

mod booking;
mod calendar;
mod client;
mod crm;
mod db;
mod eval;
mod handoff;
mod import;
mod llm;
mod messengers;
mod operator;
mod outbox;
mod pilot;
mod report;
mod serve;
mod telegram;
mod test;
mod understand;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Booking and lead-qualification chatbot for small service businesses.
#[derive(Debug, Parser)]
#[command(name = "bot", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the live bot: messenger webhooks, web chat, reminders, CRM sync.
    Serve(serve::Args),
    /// Run checks of the bot.
    #[command(subcommand)]
    Test(TestCommand),
    /// Pilot the bot on a share of new clients (`bot pilot --share 10`), the managers serving
    /// the rest; `status` gives the per-arm KPIs and the verdict.
    Pilot(pilot::Args),
    /// Import exported chats (Telegram Desktop JSON, WhatsApp text, CSV) as the KPIs' baseline.
    Import(import::Args),
    /// KPIs of a period: response times, qualified %, booking conversion, no-shows — live and
    /// imported side by side.
    Report(report::Args),
    /// Bitrix24 CRM: push test or pending leads, verify the integration.
    #[command(subcommand)]
    Crm(crm::CrmCommand),
    /// Score the bot on labelled data: `bot eval understand FILE` (rules alone vs rules + LLM).
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// The LLM beside the rules (`BOT_LLM_*`): check that it answers.
    #[command(subcommand)]
    Llm(llm::LlmCommand),
    /// Show how the bot understands messages: one JSON object per message.
    Understand(understand::Args),
    /// The database: apply migrations, show status (`--db` / DATABASE_URL).
    #[command(subcommand)]
    Db(db::DbCommand),
    /// The schedule: export bookings as iCalendar.
    #[command(subcommand)]
    Calendar(calendar::CalendarCommand),
    /// Telegram: register the webhook.
    #[command(subcommand)]
    Telegram(telegram::TelegramCommand),
    /// MAX: subscribe the webhook.
    #[command(subcommand)]
    Max(messengers::MaxCommand),
    /// VK community messages: check the Callback API settings.
    #[command(subcommand)]
    Vk(messengers::VkCommand),
    /// Bookings: mark a past visit completed or no-show.
    #[command(subcommand)]
    Booking(booking::BookingCommand),
    /// The work queue: pending jobs and dead letters; retry dead letters.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Conversations handed to managers: what waits for a human; give one back to the bot.
    #[command(subcommand)]
    Handoff(handoff::HandoffCommand),
    /// A person's data (152-FZ): show everything stored, or erase it.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// The managers' console's operators: add (prints a one-time password), list, remove, reset.
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
}

#[derive(Debug, Subcommand)]
pub enum TestCommand {
    /// Replay the reference dialogs against the bot.
    Dialogs(test::DialogsArgs),
}

/// How a listing command prints: a table for people, JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TableFormat {
    Table,
    Json,
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Understand(args) => understand::run(args),
        Command::Db(cmd) => db::run(cmd),
        Command::Calendar(cmd) => calendar::run(cmd),
        Command::Booking(cmd) => booking::run(cmd),
        Command::Outbox(cmd) => outbox::run(cmd),
        Command::Handoff(cmd) => handoff::run(cmd),
        Command::Client(cmd) => client::run(cmd),
        Command::Operator(cmd) => operator::run(cmd),
        Command::Serve(args) => serve::run(args),
        Command::Telegram(cmd) => telegram::run(cmd),
        Command::Max(cmd) => messengers::run_max(cmd),
        Command::Vk(cmd) => messengers::run_vk(cmd),
        Command::Test(TestCommand::Dialogs(args)) => test::run(args),
        Command::Pilot(args) => pilot::run(args),
        Command::Import(args) => import::run(args),
        Command::Report(args) => report::run(args),
        Command::Crm(cmd) => crm::run(cmd),
        Command::Llm(cmd) => llm::run(cmd),
        Command::Eval(cmd) => eval::run(cmd),
    }
}

/// The business profile from `--profile FILE` / `BOT_PROFILE`, or the embedded demo salon.
pub(crate) fn profile_or_demo(
    path: Option<&std::path::Path>,
) -> anyhow::Result<crate::config::Profile> {
    Ok(match path {
        Some(path) => crate::config::load(path)?,
        None => crate::config::demo_salon(),
    })
}

/// Print an error chain to stderr and return exit code 2 (usage or environment error).
pub(crate) fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {err:#}");
    ExitCode::from(2)
}
