//! `bot operator add|list|remove|reset`: the people who may log in to the managers' console.
//! `add` and `reset` print a one-time password once; only its Argon2id hash is stored.

use super::TableFormat as Format;
use super::db::{DbArg, block_on};
use crate::store::operators::new_password;
use anyhow::bail;
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum OperatorCommand {
    /// Add an operator and print their one-time password.
    Add(NameArgs),
    /// The operators, by name.
    List(ListArgs),
    /// Remove an operator.
    Remove(NameArgs),
    /// Give an operator a new one-time password (the old one stops working).
    Reset(NameArgs),
}

#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// The operator's login name (1–64 printable characters).
    #[arg(value_parser = valid_name)]
    name: String,
    #[command(flatten)]
    db: DbArg,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    db: DbArg,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

fn valid_name(s: &str) -> Result<String, String> {
    let name = s.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err("an operator name is 1 to 64 printable characters".into());
    }
    Ok(name.to_string())
}

pub fn run(cmd: OperatorCommand) -> ExitCode {
    block_on(async move {
        let now = chrono::Utc::now();
        match cmd {
            OperatorCommand::Add(a) => {
                let store = a.db.open().await?;
                let password = new_password()?;
                if !store.add_operator(&a.name, &password, now).await? {
                    bail!(
                        "operator {:?} exists already (bot operator reset gives a new password)",
                        a.name
                    );
                }
                println!(
                    "operator {} added; one-time password (shown once): {password}",
                    a.name
                );
            }
            OperatorCommand::Reset(a) => {
                let store = a.db.open().await?;
                let password = new_password()?;
                if !store.reset_operator(&a.name, &password, now).await? {
                    bail!("no operator {:?}", a.name);
                }
                println!(
                    "operator {}: new one-time password (shown once): {password}",
                    a.name
                );
            }
            OperatorCommand::Remove(a) => {
                let store = a.db.open().await?;
                if !store.remove_operator(&a.name).await? {
                    bail!("no operator {:?}", a.name);
                }
                println!("operator {} removed", a.name);
            }
            OperatorCommand::List(a) => {
                let store = a.db.open().await?;
                let operators = store.operators().await?;
                match a.format {
                    Format::Json => {
                        let rows: Vec<_> = operators
                            .iter()
                            .map(|o| {
                                json!({ "name": o.name, "created_at": o.created_at,
                                             "password_set_at": o.updated_at })
                            })
                            .collect();
                        println!("{}", serde_json::to_string_pretty(&rows)?);
                    }
                    Format::Table if operators.is_empty() => {
                        println!("no operators: add one with `bot operator add NAME`");
                    }
                    Format::Table => {
                        for o in &operators {
                            println!(
                                "{} · added {} · password set {}",
                                o.name,
                                o.created_at.format("%Y-%m-%d"),
                                o.updated_at.format("%Y-%m-%d %H:%M")
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    })
}
