//! End-to-end tests of `bot serve`: the real server on port 0 with a fresh SQLite file per
//! test, spoken to over HTTP, with a Telegram Bot API emulator where Telegram is on.

mod access;
mod browser;
mod console;
mod crash;
mod crm;
mod fuzz;
mod handoff;
mod health;
mod hygiene;
mod llm;
mod max;
mod pilot;
mod polling;
mod privacy;
mod telegram;
mod timeouts;
mod vk;
mod web;
mod worker;
