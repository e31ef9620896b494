//! The CRM boundary: everything the bot says to Bitrix24 goes through here.
//! - [`bitrix24`]: the REST transport (webhook URL, JSON bodies, batch, leaky bucket, retries,
//!   error classification) and the wire shapes of its answers;
//! - [`lead`]: mapping our leads to Bitrix24 lead fields and the deduplicating sync
//!   (`crm.duplicate.findbycomm` + `ORIGIN_ID` → update instead of add);
//! - [`csv`]: the test-lead CSV of `bot crm sync --leads`;
//! - [`events`]: what the portal tells back: status events, fetched leads and deals with their
//!   status semantics, the changes since a reconciliation cursor;
//! - [`oauth`]: the OAuth mode of the client;
//! - [`outbox`]: the outbox path shared by the CRM worker of `bot serve` and the CLI — which
//!   jobs to push, what the answers mean for them (the only file here that uses the store).
//!
//! Nothing here reads the clock for business logic; callers pass the time.

pub mod bitrix24;
pub mod csv;
pub mod events;
pub mod lead;
pub mod oauth;
pub mod outbox;

pub use bitrix24::{Bitrix24, CrmError, PortalError, Settings};
pub use lead::{CrmLead, LeadChannel, Outcome, SyncReport};
