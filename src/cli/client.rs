//! `bot client show PERSON` and `bot client erase PERSON --yes`: everything the store holds
//! about a person (152-FZ's right of access), and its erasure on request. PERSON is a phone
//! (every client with it, on any channel) or `CHANNEL:ID`.

use super::TableFormat as Format;
use super::db::{DbArg, block_on, block_on_code};
use crate::store::privacy::Person;
use anyhow::Context;
use chrono::{TimeZone, Utc};
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Everything stored about a person: contacts, messages, bookings, leads.
    Show(ShowArgs),
    /// Erase a person's personal data in one transaction (bookings stay as anonymous counts);
    /// lists the Bitrix24 leads to erase there.
    Erase(EraseArgs),
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A phone (+79131234567, 8 913 123-45-67) or CHANNEL:ID (telegram:123, web:…, max:…, vk:…).
    #[arg(value_parser = Person::parse)]
    person: Person,
    #[command(flatten)]
    db: DbArg,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, clap::Args)]
pub struct EraseArgs {
    /// A phone or CHANNEL:ID, as for `show`.
    #[arg(value_parser = Person::parse)]
    person: Person,
    #[command(flatten)]
    db: DbArg,
    /// Really erase (without it, nothing is changed and the command says what it would do).
    #[arg(long)]
    yes: bool,
}

pub fn run(cmd: ClientCommand) -> ExitCode {
    match cmd {
        ClientCommand::Show(args) => block_on(show(args)),
        ClientCommand::Erase(args) => block_on_code(erase(args)),
    }
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let store = args.db.open().await?;
    let ids = store.find_person(&args.person).await?;
    let from = Utc
        .with_ymd_and_hms(1970, 1, 1, 0, 0, 0)
        .single()
        .context("epoch")?;
    let to = Utc
        .with_ymd_and_hms(2200, 1, 1, 0, 0, 0)
        .single()
        .context("far future")?;
    let bookings = store.bookings_between(from, to).await?;
    let leads = store.leads().await?;
    let mut people = Vec::new();
    for id in ids {
        let card = store.client_card(id, usize::MAX).await?;
        let messages: Vec<_> = card
            .messages
            .iter()
            .map(|m| {
                json!({ "at": m.created_at, "from": if m.inbound { "client" } else { m.kind.as_str() },
                        "text": m.text })
            })
            .collect();
        let own_bookings: Vec<_> = bookings
            .iter()
            .filter(|b| b.client_id == id)
            .map(|b| {
                json!({ "id": b.booking.id.as_str(), "service": b.booking.service.as_str(),
                        "staff": b.booking.slot.staff.as_str(), "start": b.booking.slot.start,
                        "status": crate::store::status_str(b.booking.status) })
            })
            .collect();
        let own_leads: Vec<_> = leads
            .iter()
            .filter(|l| l.client == card.client)
            .map(|l| {
                json!({ "id": l.id, "name": l.contact.name, "phone": l.contact.phone,
                        "email": l.contact.email, "qualified_at": l.qualified_at,
                        "crm": l.crm_state, "came_from": l.came_from })
            })
            .collect();
        people.push(json!({
            "client": card.client.to_string(), "name": card.name, "phone": card.phone,
            "messages": messages, "bookings": own_bookings, "leads": own_leads,
        }));
    }
    if people.is_empty() {
        anyhow::bail!("nobody is stored as {:?}", args.person);
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&people)?),
        Format::Table => {
            for p in &people {
                println!(
                    "{} · name {} · phone {}",
                    p["client"].as_str().unwrap_or(""),
                    p["name"].as_str().unwrap_or("—"),
                    p["phone"].as_str().unwrap_or("—")
                );
                for m in p["messages"].as_array().into_iter().flatten() {
                    println!(
                        "  {} {}: {}",
                        m["at"].as_str().unwrap_or(""),
                        m["from"].as_str().unwrap_or(""),
                        m["text"].as_str().unwrap_or("")
                    );
                }
                for b in p["bookings"].as_array().into_iter().flatten() {
                    println!("  booking {b}");
                }
                for l in p["leads"].as_array().into_iter().flatten() {
                    println!("  lead {l}");
                }
            }
        }
    }
    Ok(())
}

async fn erase(args: EraseArgs) -> anyhow::Result<ExitCode> {
    let store = args.db.open().await?;
    let ids = store.find_person(&args.person).await?;
    if !args.yes {
        if ids.is_empty() {
            anyhow::bail!(
                "no client record of {:?} (imported chats are checked with --yes)",
                args.person
            );
        }
        eprintln!(
            "would erase {} client record(s) of {:?} and their imported chats; nothing changed: run again with --yes",
            ids.len(),
            args.person
        );
        return Ok(ExitCode::from(2));
    }
    let erased = store
        .erase_person(&args.person, Utc::now())
        .await?
        .with_context(|| format!("nobody is stored as {:?}", args.person))?;
    println!(
        "erased: {} client record(s), {} message texts, {} leads, {} pending jobs dropped, {} imported chat(s), {} pilot assignment(s)",
        erased.clients,
        erased.messages,
        erased.leads,
        erased.jobs_dropped,
        erased.imported_chats,
        erased.pilot_assignments
    );
    for crm in &erased.crm_leads {
        println!("erase in Bitrix24 too: lead {crm}");
    }
    Ok(ExitCode::SUCCESS)
}
