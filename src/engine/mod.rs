//! The dialog engine: a pure, synchronous state machine
//! `(Conversation, Inbound, now, &Profile, &dyn Availability) -> Turn`.
//! No I/O, no clock reads, no hidden randomness: the variation of a reply is chosen by a hash of
//! the conversation and its turn number, so a replayed dialog answers the same way. Inputs come
//! from channels (via the server), the dialog runner or log import; effects go to the store.

mod buttons;
mod flow;
pub mod plan;
pub mod reply;

pub use buttons::Payload;

use crate::calendar::Availability;
use crate::config::Profile;
use crate::domain::{
    Booking, ClientRef, Contact, Effect, Inbound, Reply, ServiceId, Slot, StaffId, When,
};
use crate::nlu::{Nlu, Understanding};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who answers the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    #[default]
    Bot,
    /// Handed off: the bot stays silent until released.
    Human,
    /// No managers' channel is set up: a manager is to call the client back (the hand-off is
    /// listed by `bot handoff list`), and meanwhile the bot keeps answering.
    Callback,
}

impl Owner {
    /// The bot answers the client's messages.
    pub fn bot_answers(self) -> bool {
        self != Owner::Human
    }
}

/// What the bot is waiting for.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "stage")]
pub enum Stage {
    #[default]
    Idle,
    /// Collecting what a booking needs (service, date/time, contact).
    Booking,
    /// Slots were offered as buttons; waiting for a choice. `moving` is the booking being
    /// rescheduled, if the slots replace one.
    ChoosingSlot {
        offered: Vec<Slot>,
        moving: Option<Booking>,
    },
    /// A free slot is held while the bot asks for name/phone.
    AwaitingContact { slot: Slot },
    /// Moving an existing booking: waiting for the new time.
    Rescheduling { booking: Booking },
    /// Asked "отменить запись?".
    ConfirmingCancel { booking: Booking },
    /// A reminder was sent; waiting for "буду" / "не смогу".
    ReminderSent { booking: Booking },
    /// Offered to book (after a price/promo answer or a declined reminder).
    OfferedBooking,
    /// Asked which service the client wants the price of.
    AskedPriceService,
    /// No managers' channel: asked for a phone so that a manager can call back.
    AwaitingCallbackPhone,
    /// A client with an upcoming booking of the service asked for a new time: move that booking
    /// or make a second one? The wish is in the draft.
    MoveOrNew { booking: Booking },
    /// The client turned the offers down twice: asked whether a manager should pick a time.
    /// The draft is kept.
    OfferedManager,
}

/// What the bot has gathered for the booking in progress.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Draft {
    pub service: Option<ServiceId>,
    pub staff: Option<StaffId>,
    pub when: When,
}

/// The state of one conversation, carried between turns (and stored as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub client: ClientRef,
    pub owner: Owner,
    pub stage: Stage,
    pub draft: Draft,
    pub contact: Contact,
    /// Consecutive messages the bot did not understand.
    pub misunderstandings: u32,
    /// The lead has been reported qualified (reported once).
    pub qualified: bool,
    /// Turns so far (drives variation choice and booking numbers).
    pub turns: u32,
    /// Hashes of the texts the bot sent in its last turn with replies: a text is never sent
    /// twice in a row (another variation is chosen).
    #[serde(default)]
    pub last_said: Vec<u64>,
    /// Offers in a row the client did not take (turned down, or asked again for what is not
    /// free); at two a manager is offered.
    #[serde(default)]
    pub unmet_offers: u32,
    /// Every slot offered in the booking under way (cleared once one is taken or the booking
    /// ends): an offer made only of these is not made again.
    #[serde(default)]
    pub last_offer: Vec<Slot>,
    /// The campaign of the client's first deep-link start, for the lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub came_from: Option<String>,
}

impl Conversation {
    pub fn new(client: ClientRef) -> Self {
        Conversation {
            client,
            owner: Owner::Bot,
            stage: Stage::Idle,
            draft: Draft::default(),
            contact: Contact::default(),
            misunderstandings: 0,
            last_said: Vec::new(),
            unmet_offers: 0,
            last_offer: Vec::new(),
            came_from: None,
            qualified: false,
            turns: 0,
        }
    }
}

/// The outcome of one turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub conversation: Conversation,
    /// Messages to send, in order; empty = the bot stays silent.
    pub replies: Vec<Reply>,
    pub effects: Vec<Effect>,
    /// What the message was understood as (None for non-text events).
    pub understanding: Option<Understanding>,
}

/// The engine for one profile.
pub struct Engine {
    profile: Profile,
    nlu: Nlu,
    /// A managers' channel is set up, so a hand-off reaches a person.
    managers: bool,
}

impl Engine {
    pub fn new(profile: Profile) -> Engine {
        let nlu = Nlu::new(&profile);
        Engine {
            profile,
            nlu,
            managers: true,
        }
    }

    /// No managers' channel is set up (a web-only business): a hand-off tells the client how to
    /// reach a person and asks for a phone to call back, and the bot keeps answering.
    pub fn without_managers(mut self) -> Engine {
        self.managers = false;
        self
    }

    /// Whether a hand-off reaches a person in a managers' channel.
    pub fn managers_reachable(&self) -> bool {
        self.managers
    }

    /// The greeting a new client sees before writing anything (the web chat page opens with
    /// it): the profile's `greeting` with the menu of what the bot can do today.
    pub fn welcome(&self, now: DateTime<Utc>) -> Reply {
        let today = now
            .with_timezone(&self.profile.business.timezone)
            .date_naive();
        let mut r = reply::say(
            &self.profile,
            crate::config::templates::TemplateKey::Greeting,
            0,
            &reply::Values::new(),
        );
        r.buttons = flow::menu(&self.profile, today);
        r
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn nlu(&self) -> &Nlu {
        &self.nlu
    }

    /// The first step of a turn, pure and outside any lock: what the client's text says (None
    /// for events without text). The store runs it before its write transaction begins.
    pub fn understand(&self, inbound: &Inbound, now: DateTime<Utc>) -> Option<Understanding> {
        flow::understand(self, inbound, now)
    }

    /// The second step: decide the next step of `conversation` given `inbound` at `now` and
    /// what [`Engine::understand`] made of it (None: understood here).
    pub fn decide(
        &self,
        conversation: &Conversation,
        inbound: &Inbound,
        understood: Option<Understanding>,
        now: DateTime<Utc>,
        availability: &dyn Availability,
    ) -> Turn {
        flow::turn(self, conversation, inbound, understood, now, availability)
    }

    /// Both steps at once (tests, the dialog replay).
    pub fn turn(
        &self,
        conversation: &Conversation,
        inbound: &Inbound,
        now: DateTime<Utc>,
        availability: &dyn Availability,
    ) -> Turn {
        let understood = self.understand(inbound, now);
        self.decide(conversation, inbound, understood, now, availability)
    }
}
