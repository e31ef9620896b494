//! A full disk on the SQLite file's file system: writes fail while it is full and recover by
//! themselves once space returns, with every acknowledged message kept. A failed COMMIT used to
//! leave the pooled connection inside its transaction, so every later write failed with «begin
//! at non-zero transaction depth» until restart. The file system is a real tmpfs of 2 MiB
//! (needs root; skipped without it unless `CI` is set).

use bot::domain::{Event, Inbound};
use bot::store::{Handled, Store};
use testkit::db::{client, engine, now};
use testkit::tmpfs::SmallDisk;

async fn say(store: &Store, n: usize) -> Result<Handled, bot::store::StoreError> {
    let inbound = Inbound {
        client: client(n % 3),
        at: now(),
        event: Event::Text {
            text: format!("сообщение номер {n}: сколько стоит маникюр?"),
        },
    };
    store
        .process_inbound(&engine(), &format!("disk:{n}"), &inbound, now())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_recover_when_the_disk_has_space_again() {
    let Some(disk) = SmallDisk::mount(2) else {
        return;
    };
    let url = format!("sqlite://{}", disk.path().join("bot.db").display());
    let store = Store::open(&url).await.expect("open");
    let mut acknowledged = Vec::new();
    for n in 0..5 {
        say(&store, n).await.expect("room on the disk");
        acknowledged.push(n);
    }

    let filler = disk.fill();
    let mut failed = 0;
    for n in 5..200 {
        match say(&store, n).await {
            Ok(_) => acknowledged.push(n),
            Err(e) => {
                failed += 1;
                eprintln!("disk full: {e}");
            }
        }
        if failed >= 8 {
            break;
        }
    }
    assert!(failed >= 8, "a full disk never failed a write");

    std::fs::remove_file(filler).expect("free the space");
    for n in 200..220 {
        say(&store, n)
            .await
            .unwrap_or_else(|e| panic!("write {n} after space returned: {e}"));
        acknowledged.push(n);
    }

    // Everything acknowledged is there, also after reopening the file.
    store.close().await;
    let store = Store::open(&url).await.expect("reopen");
    let mut stored = Vec::new();
    for c in 0..3 {
        for m in store.messages(&client(c)).await.expect("messages") {
            if m.inbound {
                stored.push(m.text);
            }
        }
    }
    for n in &acknowledged {
        let text = format!("сообщение номер {n}: сколько стоит маникюр?");
        assert!(stored.contains(&text), "acknowledged message {n} lost");
    }
    store.close().await;
}
