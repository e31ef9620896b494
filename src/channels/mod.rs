//! Messaging channels at the edge of the bot: each file parses its channel's inbound format
//! into `domain::Inbound` (the only place that knows that format) and sends replies back.
//! Channels decide nothing about the dialog (that is `engine/`) and store nothing (that is
//! `store/`); the server and its workers call them.

pub mod telegram;
pub mod web;
