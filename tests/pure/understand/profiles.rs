//! Two small business profiles built in code (a salon and a clinic), so the phrase tables do
//! not depend on the demo fixtures' wording.

use bot::config::{
    Business, BusinessKind, DayHours, Escalation, Faq, Price, Profile, Qualification, Reminders,
    Service, Staff, WeekHours,
};
use bot::domain::{ServiceId, StaffId};
use chrono::NaiveTime;
use std::collections::BTreeMap;

fn t(h: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, 0, 0).unwrap_or(NaiveTime::MIN)
}

fn week(open: u32, close: u32) -> WeekHours {
    let day = Some(DayHours {
        open: t(open),
        close: t(close),
    });
    WeekHours { days: [day; 7] }
}

fn service(id: &str, name: &str, synonyms: &[&str]) -> Service {
    Service {
        id: ServiceId::from(id),
        name: name.to_string(),
        accusative: name.to_string(),
        price: Price::Fixed(1500),
        price_note: None,
        duration_minutes: 60,
        synonyms: synonyms.iter().map(|s| s.to_string()).collect(),
    }
}

fn staff(id: &str, name: &str, aliases: &[&str], hours: &WeekHours) -> Staff {
    Staff {
        id: StaffId::from(id),
        name: name.to_string(),
        role: "мастер".to_string(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        services: Vec::new(),
        hours: hours.clone(),
    }
}

fn faq(id: &str, keywords: &[&str]) -> Faq {
    Faq {
        id: id.to_string(),
        keywords: keywords.iter().map(|s| s.to_string()).collect(),
        answer: "…".to_string(),
    }
}

fn base(kind: BusinessKind, hours: WeekHours) -> Profile {
    Profile {
        business: Business {
            name: "Тест".to_string(),
            kind,
            address: "Новосибирск, Красный проспект, 1".to_string(),
            phone: "+73832000000".to_string(),
            timezone: chrono_tz::Asia::Novosibirsk,
            website: None,
        },
        hours,
        holidays: Vec::new(),
        booking: Default::default(),
        staff: Vec::new(),
        services: Vec::new(),
        promotions: Vec::new(),
        faq: Vec::new(),
        templates: BTreeMap::new(),
        qualification: Qualification::default(),
        escalation: Escalation::default(),
        reminders: Reminders {
            before_hours: vec![24, 2],
            quiet_from: t(22),
            quiet_until: t(9),
        },
    }
}

const ADDRESS: &[&str] = &[
    "адрес",
    "где вы находитесь",
    "как добраться",
    "как вас найти",
    "где находится",
];

pub fn salon() -> Profile {
    let hours = week(9, 21);
    let mut p = base(BusinessKind::Salon, hours.clone());
    p.services = vec![
        service(
            "manicure",
            "маникюр",
            &[
                "маникюр с покрытием",
                "покрытие гель-лак",
                "гель-лак",
                "ногти",
                "ноготки",
                "мани",
            ],
        ),
        service(
            "pedicure",
            "педикюр",
            &["педикюр с покрытием", "ногти на ногах", "стопы"],
        ),
        service(
            "haircut_women",
            "женская стрижка",
            &[
                "стрижка",
                "подстричься",
                "подстричь",
                "подровнять кончики",
                "каре",
                "челка",
            ],
        ),
        service(
            "haircut_men",
            "мужская стрижка",
            &[
                "стрижка для мужчины",
                "стрижка мужу",
                "барбер",
                "борода",
                "стрижка бороды",
            ],
        ),
        service(
            "coloring",
            "окрашивание волос",
            &[
                "окрашивание",
                "покраска волос",
                "покрасить волосы",
                "покраситься",
                "мелирование",
                "балаяж",
                "тонирование",
                "покрасить корни",
                "корни",
            ],
        ),
        service(
            "brows",
            "коррекция бровей",
            &[
                "брови",
                "оформление бровей",
                "окрашивание бровей",
                "ламинирование бровей",
            ],
        ),
        service(
            "lashes",
            "наращивание ресниц",
            &["ресницы", "ламинирование ресниц", "ламинирование", "lash"],
        ),
        service(
            "massage",
            "массаж",
            &["массаж спины", "антицеллюлитный массаж", "массаж лица"],
        ),
        service(
            "sugaring",
            "шугаринг",
            &[
                "депиляция",
                "эпиляция",
                "восковая депиляция",
                "воск",
                "бикини",
            ],
        ),
        service(
            "facial",
            "чистка лица",
            &["уход за лицом", "пилинг", "чистка", "косметолог"],
        ),
    ];
    p.staff = vec![
        staff("olga", "Ольга", &["Ольга Викторовна"], &hours),
        staff("anna", "Анна", &[], &hours),
        staff("ekaterina", "Екатерина", &["Катя"], &hours),
        staff("svetlana", "Светлана", &["Светлана Игоревна"], &hours),
        staff("vera", "Вера", &[], &hours),
    ];
    p.faq = vec![
        faq("address", ADDRESS),
        faq(
            "hours",
            &[
                "до скольки",
                "часы работы",
                "во сколько открываетесь",
                "режим работы",
                "график работы",
                "когда работаете",
                "до какого часа",
            ],
        ),
        faq(
            "parking",
            &["парковка", "припарковаться", "оставить машину"],
        ),
        faq(
            "payment",
            &[
                "оплата картой",
                "оплатить картой",
                "наличные",
                "переводом",
                "способы оплаты",
                "оплата",
            ],
        ),
        faq("gift_card", &["сертификат", "подарочный сертификат"]),
    ];
    p.escalation = Escalation {
        complaint_keywords: vec!["жалоба".into(), "верните деньги".into(), "испортили".into()],
        ..Escalation::default()
    };
    p
}

pub fn clinic() -> Profile {
    let hours = week(8, 20);
    let mut p = base(BusinessKind::Clinic, hours.clone());
    p.services = vec![
        service(
            "therapist",
            "прием терапевта",
            &["терапевт", "консультация терапевта", "врач общей практики"],
        ),
        service(
            "dentist",
            "стоматолог",
            &[
                "зубной",
                "зубной врач",
                "лечение зубов",
                "зуб",
                "зубы",
                "стоматология",
            ],
        ),
        service(
            "teeth_cleaning",
            "профессиональная чистка зубов",
            &["чистка зубов", "гигиена полости рта"],
        ),
        service("ultrasound", "УЗИ", &["узи брюшной полости", "ультразвук"]),
        service(
            "blood_test",
            "анализ крови",
            &["анализы", "сдать кровь", "сдать анализы", "анализ"],
        ),
        service("gynecologist", "гинеколог", &["гинеколога", "женский врач"]),
        service("ent", "лор", &["отоларинголог", "ухо горло нос"]),
        service("cardiologist", "кардиолог", &["экг", "кардиограмма"]),
        service(
            "pediatrician",
            "педиатр",
            &["детский врач", "детский доктор"],
        ),
    ];
    p.staff = vec![
        staff(
            "ivanov",
            "Иванов Сергей Петрович",
            &["Сергей Петрович", "доктор Иванов"],
            &hours,
        ),
        staff(
            "petrova",
            "Петрова Мария Ивановна",
            &["Мария Ивановна"],
            &hours,
        ),
        staff(
            "kuznetsova",
            "Кузнецова Наталья",
            &["Наталья Андреевна"],
            &hours,
        ),
    ];
    p.faq = vec![
        faq("address", ADDRESS),
        faq(
            "hours",
            &[
                "до скольки",
                "часы работы",
                "режим работы",
                "во сколько открываетесь",
                "график",
            ],
        ),
        faq(
            "what_to_bring",
            &[
                "что взять с собой",
                "какие документы",
                "паспорт",
                "что с собой",
            ],
        ),
        faq("oms", &["омс", "по полису", "полис"]),
        faq(
            "preparation",
            &["как подготовиться", "подготовка", "натощак"],
        ),
    ];
    p.escalation = Escalation {
        medical_questions_to_human: true,
        medical_keywords: vec!["болит".into(), "температура".into(), "диагноз".into()],
        complaint_keywords: vec!["жалоба".into()],
        ..Escalation::default()
    };
    p
}
