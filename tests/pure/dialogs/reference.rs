//! The ten reference dialogs in `dialogs/` are well-formed specs of the demo salon that cover
//! what the product asks of them. Whether the bot passes them is `bot test dialogs dialogs/`
//! in CI (`.ci/run`), not this file.

use super::{compile_file, repo};
use bot::spec::load;
use bot::spec::model::{Action, Dialog};

fn reference() -> Vec<Dialog> {
    let files = load::discover(&[repo().join("dialogs")]).expect("dialogs/");
    files
        .iter()
        .map(|f| {
            compile_file(f).unwrap_or_else(|e| {
                let e: Vec<String> = e.iter().map(ToString::to_string).collect();
                panic!("{}:\n{}", f.display(), e.join("\n"))
            })
        })
        .collect()
}

#[test]
fn there_are_at_least_ten_numbered_reference_dialogs_and_they_compile() {
    let dialogs = reference();
    let ids: Vec<&str> = dialogs.iter().map(|d| d.id.as_str()).collect();
    assert!(ids.len() >= 10, "{ids:?}");
    for (i, id) in ids.iter().enumerate() {
        assert!(id.starts_with(&format!("{:02}-", i + 1)), "{ids:?}");
    }
}

#[test]
fn every_client_phrase_has_at_least_two_variations() {
    for d in reference() {
        for s in &d.steps {
            if let Action::Text(v) = &s.action {
                assert!(v.len() >= 2, "{} {}: {v:?}", d.id, s.origin);
            }
        }
    }
}

#[test]
fn contact_capture_appears_in_at_least_two_dialogs() {
    let with_contact = reference()
        .iter()
        .filter(|d| d.steps.iter().any(|s| s.expect.contact.is_some()))
        .count();
    assert!(with_contact >= 2, "{with_contact}");
}

#[test]
fn the_readme_example_is_a_valid_spec() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = readme
        .split("## Writing dialog specs")
        .nth(1)
        .expect("README has a Writing dialog specs section");
    let example = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a yaml example");
    let thanks = std::fs::read_to_string(repo().join("dialogs/fragments/thanks.yaml"))
        .expect("thanks fragment");
    let dialog = super::compile_spec(example, &[("fragments/thanks.yaml", &thanks)])
        .unwrap_or_else(|e| panic!("{}", e[0]));
    assert_eq!(dialog.steps.len(), 3);
}
