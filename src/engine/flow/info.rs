//! Answers that are not a booking step: prices, promotions, FAQ, the fallback and hand-off,
//! a refusal.

use super::*;
use crate::nlu::Assist;

impl<'a> Ctx<'a> {
    /// One more reply the bot could not read while waiting for an answer; true when that was
    /// too many and the conversation went to a person.
    pub(super) fn unread_answer(&mut self) -> bool {
        self.conv.misunderstandings += 1;
        if self.conv.misunderstandings >= self.profile.escalation.max_misunderstandings.max(1) {
            self.handoff(HandoffReason::Misunderstanding);
            return true;
        }
        false
    }

    pub(super) fn misunderstood(&mut self) {
        // The LLM's answer from the business's knowledge, or a question for a manager.
        match self.assist.take() {
            Some(Assist::Answer(text)) => {
                self.conv.misunderstandings = 0;
                let mut buttons = self.menu();
                buttons.push(Button::new("Администратор", Payload::Human.encode()));
                self.replies.push(Reply {
                    text: if self.conv.last_said.contains(&text_hash(&text)) {
                        format!("Повторю: {text}")
                    } else {
                        text
                    },
                    buttons,
                    template: Some("llm_answer".into()),
                    request_contact: false,
                });
                return;
            }
            Some(Assist::Unanswered) => return self.handoff(HandoffReason::Question),
            None => {}
        }
        self.conv.misunderstandings += 1;
        if self.conv.misunderstandings >= self.profile.escalation.max_misunderstandings.max(1) {
            return self.handoff(HandoffReason::Misunderstanding);
        }
        let mut buttons = self.menu();
        buttons.push(Button::new("Администратор", Payload::Human.encode()));
        self.say_with(K::Fallback, Values::new(), buttons);
    }

    pub(super) fn handoff(&mut self, reason: HandoffReason) {
        self.offers_settled();
        self.effects.push(Effect::HandoffRequested { reason });
        self.conv.stage = Stage::Idle;
        self.conv.misunderstandings = 0;
        let key = match reason {
            HandoffReason::Complaint => K::HandoffComplaint,
            HandoffReason::Medical => K::HandoffMedical,
            HandoffReason::Safety => K::HandoffSafety,
            HandoffReason::Misunderstanding => K::HandoffFrustrated,
            // Never the engine's decision (the store hands a pilot's client over silently).
            HandoffReason::Requested | HandoffReason::Pilot | HandoffReason::Question => K::Handoff,
        };
        if self.managers {
            self.say(key, Values::new());
            self.conv.owner = Owner::Human;
            return;
        }
        // Nobody reads a managers' channel: never promise an answer in the chat. Say how to
        // reach a person, take a phone for a call back, and keep answering.
        self.conv.owner = Owner::Callback;
        if self.conv.contact.phone.is_some() {
            return self.callback_noted();
        }
        self.say(K::HandoffCallback, Values::new());
        if let Some(r) = self.replies.last_mut() {
            r.request_contact = true;
        }
        self.conv.stage = Stage::AwaitingCallbackPhone;
    }

    /// The client's phone is known: a manager will call back.
    pub(super) fn callback_noted(&mut self) {
        let phone = self.conv.contact.phone.clone().unwrap_or_default();
        self.conv.stage = Stage::Idle;
        let menu = self.menu();
        self.say_with(
            K::CallbackNoted,
            Values::new().set("client_phone", phone),
            menu,
        );
    }

    pub(super) fn declined(&mut self) {
        self.offers_settled();
        self.conv.stage = Stage::Idle;
        self.conv.draft = Draft::default();
        self.say(K::Declined, Values::new());
    }

    pub(super) fn no_booking(&mut self) {
        self.conv.stage = Stage::OfferedBooking;
        self.say_with(
            K::NoBooking,
            Values::new(),
            vec![Button::new("Записаться", Payload::Book.encode())],
        );
    }

    pub(super) fn ask_price_service(&mut self) {
        self.conv.stage = Stage::AskedPriceService;
        self.say(K::PriceAskService, Values::new());
    }

    /// Whether the price note of `service` mentions `other` (one of its name or synonyms).
    pub(super) fn note_speaks_of(&self, service: &ServiceId, other: &ServiceId) -> bool {
        let (Some(s), Some(o)) = (self.service(service), self.service(other)) else {
            return false;
        };
        let Some(note) = s.price_note.as_deref().map(str::to_lowercase) else {
            return false;
        };
        std::iter::once(&o.name)
            .chain(o.synonyms.iter())
            .map(|w| w.to_lowercase())
            .filter(|w| w.chars().count() >= 4)
            .any(|w| {
                // «покрытие» in the note as «покрытием»: compare without the last letters.
                let stem: String = w
                    .chars()
                    .take(w.chars().count().saturating_sub(2).max(4))
                    .collect();
                note.contains(&stem)
            })
    }

    /// After a side question answered mid-booking, the slots offered are offered again.
    pub(super) fn resume_offer(&mut self) {
        if let Stage::ChoosingSlot { offered, moving } = self.conv.stage.clone() {
            let buttons = self.slot_buttons(&offered);
            self.say_with(K::ChooseSlot, Values::new(), buttons);
            self.conv.stage = Stage::ChoosingSlot { offered, moving };
        }
    }

    pub(super) fn price(&mut self, id: ServiceId) {
        let Some(service) = self.service(&id) else {
            return self.ask_price_service();
        };
        let in_progress = self.booking_in_progress();
        let values = Values::new()
            .service(Some(service))
            .set("price", fmt_price(service.price));
        match service.price {
            Price::Fixed(_) => self.say(K::PriceFixed, values),
            Price::Range { .. } => {
                let note = service.price_note.clone().unwrap_or_default();
                self.say(K::PriceRange, values.set("price_note", note));
            }
        }
        if !in_progress {
            self.conv.draft = Draft {
                service: Some(id),
                ..Draft::default()
            };
            self.conv.stage = Stage::OfferedBooking;
            let v = Values::new().service(Some(service));
            self.say_with(
                K::OfferBooking,
                v,
                Self::yes_no("Записаться", "Нет, спасибо"),
            );
        }
    }

    pub(super) fn promos(&mut self) {
        let today = self.today();
        let lines: Vec<String> = self
            .profile
            .promotions
            .iter()
            .filter(|p| p.is_valid_on(today))
            .map(|p| {
                let until = p
                    .valid_until
                    .map(|d| format!(" (до {})", fmt_date(d)))
                    .unwrap_or_default();
                format!("• {}: {}{}", p.title, p.text, until)
            })
            .collect();
        if lines.is_empty() {
            self.say(K::NoPromo, Values::new());
            return;
        }
        self.say(
            K::PromoList,
            Values::new().set("promotions", lines.join("\n")),
        );
        if !matches!(
            self.conv.stage,
            Stage::Booking | Stage::ChoosingSlot { .. } | Stage::AwaitingContact { .. }
        ) {
            self.conv.stage = Stage::OfferedBooking;
            self.say_with(
                K::OfferBooking,
                Values::new(),
                Self::yes_no("Записаться", "Нет, спасибо"),
            );
        }
    }

    /// Several questions in one message: every answer, in the order asked, in one reply.
    pub(super) fn faqs(&mut self, ids: &[String]) {
        let found: Vec<&crate::config::Faq> = ids
            .iter()
            .filter_map(|id| self.profile.faq.iter().find(|f| &f.id == id))
            .collect();
        if found.len() < 2 {
            return self.faq(ids.first().map(String::as_str));
        }
        let text = found
            .iter()
            .map(|f| f.answer.as_str())
            .collect::<Vec<_>>()
            .join("\n\n");
        self.replies.push(Reply {
            text: if self.conv.last_said.contains(&text_hash(&text)) {
                format!("Повторю: {text}")
            } else {
                text
            },
            buttons: Vec::new(),
            template: Some(format!(
                "faq:{}",
                found
                    .iter()
                    .map(|f| f.id.as_str())
                    .collect::<Vec<_>>()
                    .join("+")
            )),
            request_contact: false,
        });
    }

    pub(super) fn faq(&mut self, id: Option<&str>) {
        match id.and_then(|id| self.profile.faq.iter().find(|f| f.id == id)) {
            Some(f) => self.replies.push(Reply {
                // Asked again right away: the same fact, not the same message.
                text: if self.conv.last_said.contains(&text_hash(&f.answer)) {
                    format!("Повторю: {}", f.answer)
                } else {
                    f.answer.clone()
                },
                buttons: Vec::new(),
                template: Some(format!("faq:{}", f.id)),
                request_contact: false,
            }),
            None => self.misunderstood(),
        }
    }
}
