use bot::config::templates::TemplateKey;
use bot::config::{self, BusinessKind, Price};

#[test]
fn demo_salon_loads() {
    let p = config::demo_salon();
    assert_eq!(p.business.kind, BusinessKind::Salon);
    assert_eq!(p.business.timezone, chrono_tz::Asia::Novosibirsk);
    for id in [
        "manicure",
        "gel_polish",
        "nail_extension",
        "pedicure",
        "haircut_women",
        "haircut_men",
        "styling",
        "coloring",
        "brows",
        "lashes",
        "depilation",
        "massage",
        "facial_cleaning",
        "makeup",
    ] {
        assert!(p.service(&id.into()).is_some(), "salon lacks service {id}");
    }
    assert!((5..=7).contains(&p.staff.len()));
    for id in ["address", "hours", "parking", "payment", "what_to_bring"] {
        assert!(p.faq.iter().any(|f| f.id == id), "salon lacks faq {id}");
    }
    assert_eq!(p.templates.len(), TemplateKey::ALL.len());
    let haircut = p.service(&"haircut_women".into()).map(|s| s.price);
    assert_eq!(
        haircut,
        Some(Price::Range {
            from: 1500,
            to: 3500
        })
    );
}

#[test]
fn demo_clinic_loads() {
    let p = config::demo_clinic();
    assert_eq!(p.business.kind, BusinessKind::Clinic);
    assert!(p.escalation.medical_questions_to_human);
    assert!(p.escalation.medical_keywords.iter().any(|k| k == "болит"));
    for id in [
        "consultation",
        "therapist",
        "dentist",
        "teeth_cleaning",
        "ultrasound",
        "lab_tests",
        "gynecologist",
        "dermatologist",
        "ent",
    ] {
        assert!(p.service(&id.into()).is_some(), "clinic lacks service {id}");
    }
    assert_eq!(p.templates.len(), TemplateKey::ALL.len());
}
