//! `bot`: a booking and lead-qualification chatbot for small service businesses, with the
//! tools to test it against written dialogs, pilot it on a share of traffic and report KPIs.
//! The library holds everything; `main.rs` only parses the command line.

pub mod calendar;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod crm;
pub mod domain;
pub mod engine;
pub mod import;
pub mod kpi;
pub mod llm;
pub mod nlu;
pub mod pilot;
pub mod server;
pub mod spec;
pub mod store;
