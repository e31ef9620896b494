//! A pilot in the store: the first assignment is kept through share changes, the managers'
//! arm is silent, a phone links a later key of the same person to the earlier arm, and a
//! stopped pilot assigns nobody (both backends).

use bot::domain::{ChannelKind, ClientRef, Event};
use bot::engine::Owner;
use bot::pilot::Arm;
use bot::store::pilot::{PilotPlan, Started};
use chrono::Duration;
use testkit::db::*;

fn plan(share: f64) -> PilotPlan {
    PilotPlan {
        share,
        seed: Some("link".into()),
        start: now() - Duration::hours(1),
        ends_at: now() + Duration::days(14),
        existing: Arm::Bot,
    }
}

fn text(t: &str) -> Event {
    Event::Text { text: t.into() }
}

async fn a_phone_links_a_later_key_to_the_earlier_arm_and_no_assignment_is_rewritten(db: &TestDb) {
    let engine = engine();
    let start = now() - Duration::hours(1);
    assert!(matches!(
        db.store.start_pilot(&plan(100.0), start).await.unwrap(),
        Started::New(_)
    ));
    // Everyone new to the bot: Анна writes on Telegram and shares her phone.
    let anna_tg = client(1);
    let card = Event::Contact {
        phone: "+79131234567".into(),
        name: Some("Анна".into()),
    };
    let p = processed(send(db, &engine, &anna_tg, "c-1", card, now()).await);
    assert!(!p.turn.replies.is_empty(), "the bot's arm is answered");

    // Now everyone new to the managers: Анна stays with the bot.
    let changed = db.store.start_pilot(&plan(0.0), now()).await.unwrap();
    assert!(matches!(changed, Started::Changed { .. }), "{changed:?}");
    let p = processed(
        send(
            db,
            &engine,
            &anna_tg,
            "t-1",
            text("а на завтра есть окна?"),
            now() + Duration::minutes(1),
        )
        .await,
    );
    assert!(!p.turn.replies.is_empty(), "a share change moves nobody");

    // She writes again from the web chat: a new key, the managers' arm, silence.
    let anna_web = ClientRef {
        channel: ChannelKind::Web,
        id: "anna-web".into(),
    };
    let w = processed(
        send(
            db,
            &engine,
            &anna_web,
            "w-1",
            text("здравствуйте, хочу на маникюр"),
            now() + Duration::minutes(2),
        )
        .await,
    );
    assert!(w.turn.replies.is_empty(), "{:?}", w.turn.replies);
    assert_eq!(w.turn.conversation.owner, Owner::Human);
    assert_eq!(w.turn.effects.len(), 1, "handed to the managers once");
    let w = processed(
        send(
            db,
            &engine,
            &anna_web,
            "w-2",
            text("это Анна, мой телефон +7 913 123-45-67"),
            now() + Duration::minutes(3),
        )
        .await,
    );
    assert!(w.turn.replies.is_empty());
    assert!(
        w.turn.effects.is_empty(),
        "no second hand-off, no booking, no lead"
    );

    let pilot = db.store.pilot().await.unwrap().expect("pilot");
    assert_eq!(pilot.share, 0.0);
    assert_eq!(pilot.seed, "link", "a share change keeps the seed");
    let rows = db.store.pilot_assignments(pilot.id).await.unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].client_key, "telegram:1001");
    assert_eq!((rows[0].arm, rows[0].share), (Arm::Bot, 100.0));
    assert_eq!(rows[0].linked_to, None);
    assert_eq!(rows[1].client_key, "web:anna-web");
    assert_eq!(
        (rows[1].arm, rows[1].share),
        (Arm::Managers, 0.0),
        "never rewritten"
    );
    assert_eq!(
        rows[1].linked_to.as_deref(),
        Some("telegram:1001"),
        "her phone links the web key to the earlier Telegram one"
    );
    assert_eq!(
        rows[1].h,
        bot::pilot::hash_v2("link", "web:anna-web"),
        "the hash is stored as computed"
    );

    // Stopped: a new client gets the bot and no assignment.
    db.store
        .stop_pilot(now() + Duration::minutes(4))
        .await
        .unwrap()
        .expect("stopped");
    let late = client(9);
    let p = processed(
        send(
            db,
            &engine,
            &late,
            "l-1",
            text("здравствуйте"),
            now() + Duration::minutes(5),
        )
        .await,
    );
    assert!(!p.turn.replies.is_empty());
    assert_eq!(db.store.pilot_assignments(pilot.id).await.unwrap().len(), 2);
    assert!(
        db.store
            .stop_pilot(now() + Duration::minutes(6))
            .await
            .unwrap()
            .is_none(),
        "nothing runs any more"
    );
}

async fn clients_known_before_the_start_are_outside_the_pilot(db: &TestDb) {
    let engine = engine();
    let old = client(2);
    let p = processed(send(db, &engine, &old, "o-1", text("привет"), now()).await);
    assert!(!p.turn.replies.is_empty());
    let later = PilotPlan {
        start: now() + Duration::minutes(1),
        existing: Arm::Managers,
        ..plan(100.0)
    };
    db.store
        .start_pilot(&later, now() + Duration::minutes(1))
        .await
        .unwrap();
    // `--existing managers`: the known client goes to the managers, unassigned.
    let p = processed(
        send(
            db,
            &engine,
            &old,
            "o-2",
            text("а сколько стоит стрижка?"),
            now() + Duration::minutes(2),
        )
        .await,
    );
    assert!(p.turn.replies.is_empty(), "{:?}", p.turn.replies);
    let new = client(3);
    let p = processed(
        send(
            db,
            &engine,
            &new,
            "n-1",
            text("привет"),
            now() + Duration::minutes(3),
        )
        .await,
    );
    assert!(
        !p.turn.replies.is_empty(),
        "share 100: the new client has the bot"
    );
    let pilot = db.store.pilot().await.unwrap().expect("pilot");
    let rows = db.store.pilot_assignments(pilot.id).await.unwrap();
    assert_eq!(rows.len(), 1, "only the new client is assigned: {rows:?}");
    assert_eq!(rows[0].client_key, "telegram:1003");
}

async fn a_release_is_refused_while_the_pilot_runs_and_taken_after_its_end(db: &TestDb) {
    let engine = engine();
    db.store
        .start_pilot(&plan(0.0), now() - Duration::hours(1))
        .await
        .unwrap();
    let c = client(4);
    let p = processed(send(db, &engine, &c, "m-1", text("привет"), now()).await);
    assert!(p.turn.replies.is_empty());
    let release = |id: &'static str, at| {
        let c = c.clone();
        let engine = &engine;
        async move { processed(send(db, engine, &c, id, Event::Released, at).await) }
    };
    let kept = release("r-1", now() + Duration::days(1)).await;
    assert_eq!(kept.turn.conversation.owner, Owner::Human, "the pilot runs");
    // Fifteen days later the two-week pilot is over: the managers may give the client back.
    let later = now() + Duration::days(15);
    let back = release("r-2", later).await;
    assert_eq!(back.turn.conversation.owner, Owner::Bot);
    let p = processed(
        send(
            db,
            &engine,
            &c,
            "m-2",
            text("сколько стоит маникюр?"),
            later + Duration::minutes(1),
        )
        .await,
    );
    assert!(!p.turn.replies.is_empty(), "the bot answers again");
}

both!(
    a_phone_links_a_later_key_to_the_earlier_arm_and_no_assignment_is_rewritten,
    clients_known_before_the_start_are_outside_the_pilot,
    a_release_is_refused_while_the_pilot_runs_and_taken_after_its_end,
);
