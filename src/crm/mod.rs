//! The CRM boundary: everything the bot says to Bitrix24 goes through here.
//! - [`bitrix24`]: the REST transport (webhook URL, JSON bodies, batch, leaky bucket, retries,
//!   error classification) and the wire shapes of its answers;
//! - [`lead`]: mapping our leads to Bitrix24 lead fields and the deduplicating sync
//!   (`crm.duplicate.findbycomm` + `ORIGIN_ID` → update instead of add);
//! - [`csv`]: the test-lead CSV of `bot crm sync --leads`;
//! - [`events`]: what the portal tells back: status events, fetched leads and deals with their
//!   status semantics, the changes since a reconciliation cursor;
//! - [`oauth`]: the OAuth mode of the client.
//!
//! Nothing here reads the clock for business logic or touches the store; callers (the CLI, the
//! CRM worker of `bot serve` in `server::crm`) decide what to push and record the outcome.

pub mod bitrix24;
pub mod csv;
pub mod events;
pub mod lead;
pub mod oauth;

pub use bitrix24::{ApiError, Bitrix24, CrmError, Settings};
pub use lead::{CrmLead, LeadChannel, Outcome, SyncReport};
