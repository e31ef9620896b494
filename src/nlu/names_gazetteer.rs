//! Russian personal names: a gazetteer of common first names with their diminutives, the case
//! forms of each (our own suffix rules: "Ольгу" → Ольга, "Кате" → Катя, "Дмитрию" → Дмитрий),
//! and patronymic / surname shapes. Profile-independent, built once per process. Used by the
//! client-name finder and by the staff matcher (which derives inflected and diminutive forms of
//! staff names from it).

use std::collections::HashMap;
use std::sync::LazyLock;

/// One line per person name: the full name, then its usual diminutives. Every form is a
/// nominative the client may sign with; diminutives are kept as written ("Катя" stays "Катя").
const NAMES: &[&str] = &[
    // female
    "анна аня анечка анюта нюта",
    "мария маша машенька маня маруся муся",
    "екатерина катя катюша катенька катерина",
    "ольга оля оленька олечка",
    "елена лена леночка",
    "алена аленка аленушка",
    "наталья наталия наташа наташенька натали",
    "татьяна таня танюша танечка",
    "ирина ира ирочка иришка",
    "светлана света светочка светик",
    "юлия юля юлечка юляша",
    "анастасия настя настенька настюша",
    "дарья даша дашенька",
    "ксения ксюша ксюшенька",
    "виктория вика викуля",
    "александра саша сашенька",
    "евгения женя женечка",
    "марина мариночка",
    "людмила люда людочка мила",
    "галина галя галочка",
    "валентина валя",
    "надежда надя наденька",
    "вера верочка",
    "любовь люба любочка",
    "нина ниночка",
    "лариса лара",
    "полина поля полечка",
    "софья софия соня софа",
    "алина алиночка",
    "кристина",
    "вероника ника",
    "маргарита рита риточка",
    "елизавета лиза лизонька",
    "валерия лера лерочка",
    "диана",
    "алиса",
    "ангелина",
    "карина",
    "яна яночка",
    "оксана",
    "жанна",
    "инна",
    "алла",
    "зинаида зина",
    "тамара тома",
    "раиса рая",
    "лидия лида",
    "нелли",
    "эльвира эля",
    "регина",
    "милана",
    "ульяна уля",
    "варвара варя",
    "василиса",
    "антонина тоня",
    "олеся",
    "снежана",
    "злата",
    "таисия тая",
    "эвелина",
    "камила",
    "амина",
    "лилия лиля",
    "майя",
    "кира",
    "ева",
    "дина",
    "роза",
    "зоя",
    "лада",
    "арина",
    "есения",
    "мирослава мира",
    "ярослава",
    "владислава влада",
    "элина",
    "эмилия",
    "эмма",
    "виолетта",
    "стефания",
    "серафима сима",
    "агата",
    "марьяна",
    "богдана",
    "аделина",
    "ариана",
    "альбина",
    "анжела анжелика",
    "василина",
    "вита",
    "гульнара",
    "дильназ",
    "евдокия",
    "инга",
    "изабелла",
    "каролина",
    "лиана",
    "лейла",
    "мадина",
    "оливия",
    "патимат",
    "римма",
    "сабина",
    "стелла",
    "фаина",
    "эльмира",
    "юлиана",
    // male
    "александр саша сашка саня шура",
    "алексей леша алеша леха",
    "андрей андрюша",
    "сергей сережа серега",
    "дмитрий дима димочка митя",
    "иван ваня",
    "михаил миша",
    "николай коля",
    "владимир вова володя",
    "евгений женя",
    "павел паша",
    "максим макс",
    "артем тема",
    "игорь",
    "олег",
    "виктор витя",
    "роман рома",
    "никита",
    "денис",
    "антон",
    "илья",
    "кирилл",
    "егор",
    "вадим",
    "юрий юра",
    "василий вася",
    "константин костя",
    "станислав стас",
    "владислав влад",
    "вячеслав слава",
    "тимур",
    "руслан",
    "георгий жора гоша",
    "григорий гриша",
    "петр петя",
    "степан степа",
    "федор федя",
    "матвей",
    "тимофей тима",
    "глеб",
    "лев лева",
    "марк",
    "даниил данила даня",
    "ярослав ярик",
    "богдан",
    "валерий валера",
    "геннадий гена",
    "анатолий толя",
    "борис боря",
    "леонид леня",
    "аркадий",
    "эдуард эдик",
    "семен сема",
    "виталий виталик",
    "ростислав",
    "арсений сеня",
    "захар",
    "савелий",
    "филипп",
    "эмиль",
    "марат",
    "ринат",
    "айдар",
    "рустам",
    "назар",
    "давид",
    "эрик",
    "арсен",
    "альберт",
    "всеволод сева",
    "эльдар",
    "ян",
];

/// Names that are also everyday words ("вера", "надежда", "роза", "мая", "света", "тема"):
/// taken as a client's name only after a trigger ("меня зовут") or when capitalised mid-text.
const COMMON_NOUNS: &[&str] = &[
    "вера",
    "надежда",
    "любовь",
    "люба",
    "роза",
    "лилия",
    "мила",
    "слава",
    "лев",
    "лада",
    "майя",
    "ника",
    "роман",
    "марк",
    "ян",
    "тома",
    "света",
    "кира",
    "злата",
    "мира",
    "дина",
    "тема",
    "поля",
    "рая",
    "лара",
    "ася",
    "сима",
    "тая",
    "уля",
    "эля",
    "вита",
    "макс",
    "влада",
    "лева",
    "инга",
    "степа",
    "сема",
    "гена",
    "эмма",
    "агата",
];

/// Male names with a fleeting vowel or an irregular stem: nominative → oblique stem.
const IRREGULAR_STEMS: &[(&str, &str)] = &[("павел", "павл"), ("лев", "льв"), ("петр", "петр")];

/// A gazetteer entry a word form points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameForm {
    /// The nominative (lowercase), as the gazetteer spells it.
    pub nominative: &'static str,
    /// The form is an everyday word too.
    pub common_noun: bool,
    /// The word is the nominative itself.
    pub is_nominative: bool,
}

pub struct Gazetteer {
    forms: HashMap<String, NameForm>,
    /// Forms keyed loosely (no soft signs, doubled letters collapsed, "ия"→"я") for names
    /// written in Latin letters ("Olga" → "олга", "Ksenia" → "ксения").
    loose: HashMap<String, &'static str>,
    /// Nominative → the full name of its line ("катя" → "екатерина").
    full: HashMap<&'static str, &'static str>,
    /// Full name → every nominative of its line.
    family: HashMap<&'static str, Vec<&'static str>>,
}

static GAZETTEER: LazyLock<Gazetteer> = LazyLock::new(Gazetteer::build);

/// The process-wide gazetteer.
pub fn gazetteer() -> &'static Gazetteer {
    &GAZETTEER
}

/// Case forms of a name or a surname in lowercase, the nominative first. Suffix rules for the
/// first, second and "-ий/-ь/-й" declensions; indeclinable endings give the word alone.
pub fn inflections(nom: &str) -> Vec<String> {
    let mut out = vec![nom.to_string()];
    let push = |out: &mut Vec<String>, base: &str, ends: &[&str]| {
        for e in ends {
            let f = format!("{base}{e}");
            if !out.contains(&f) {
                out.push(f);
            }
        }
    };
    if let Some((_, stem)) = IRREGULAR_STEMS.iter().find(|(n, _)| *n == nom) {
        push(&mut out, stem, &["а", "у", "ом", "е"]);
        return out;
    }
    if let Some(base) = nom.strip_suffix("ская") {
        push(&mut out, base, &["ской", "скую"]);
    } else if let Some(base) = nom.strip_suffix("ский") {
        push(&mut out, base, &["ского", "скому", "ским", "ском"]);
    } else if let Some(base) = nom.strip_suffix("ия") {
        push(&mut out, base, &["ии", "ию", "ией"]);
    } else if let Some(base) = nom.strip_suffix("ий") {
        push(&mut out, base, &["ия", "ию", "ием", "ии", "ье"]);
    } else if let Some(base) = nom.strip_suffix('я') {
        push(&mut out, base, &["и", "е", "ю", "ей"]);
    } else if let Some(base) = nom.strip_suffix('а') {
        let soft = base.ends_with(['г', 'к', 'х', 'ж', 'ш', 'ч', 'щ']);
        let ends: &[&str] = if soft {
            &["и", "е", "у", "ой", "ей"]
        } else if base.ends_with(['ц']) {
            &["ы", "е", "у", "ей"]
        } else if nom.ends_with("ова") || nom.ends_with("ева") || nom.ends_with("ина") {
            // Surnames (Иванова) and names alike (Ирина): both readings are harmless.
            &["ы", "е", "у", "ой", "ою"]
        } else {
            &["ы", "е", "у", "ой"]
        };
        push(&mut out, base, ends);
    } else if let Some(base) = nom.strip_suffix('й') {
        push(&mut out, base, &["я", "ю", "ем", "е"]);
    } else if let Some(base) = nom.strip_suffix('ь') {
        push(&mut out, base, &["я", "ю", "ем", "е"]);
    } else if nom.ends_with("ов") || nom.ends_with("ев") || nom.ends_with("ин") {
        push(&mut out, nom, &["а", "у", "ым", "е"]);
    } else if nom.ends_with(|c: char| "бвгджзклмнпрстфхцчшщ".contains(c)) {
        push(&mut out, nom, &["а", "у", "ом", "ем", "е"]);
    }
    out
}

/// A patronymic in any case → its nominative ("игоревне" → "игоревна", "петровича" →
/// "петрович"); None when the word is not shaped like one.
pub fn patronymic_nominative(word: &str) -> Option<String> {
    const FEMALE: &[&str] = &["овн", "евн", "ичн", "инична"];
    for suffix in FEMALE {
        if let Some(pos) = word.rfind(suffix) {
            let base_end = pos + suffix.len();
            let (base, tail) = word.split_at(base_end);
            if base.chars().count() >= 5 && ["а", "ы", "е", "у", "ой", ""].contains(&tail) {
                return Some(format!("{base}а"));
            }
        }
    }
    for suffix in ["ович", "евич", "ич"] {
        if let Some(pos) = word.rfind(suffix) {
            let base_end = pos + suffix.len();
            let (base, tail) = word.split_at(base_end);
            if base.chars().count() >= 6 && ["", "а", "у", "ем", "е"].contains(&tail) {
                return Some(base.to_string());
            }
        }
    }
    None
}

/// A surname in any case → its nominative, for the common Russian shapes (-ов/-ев/-ин,
/// -ова/-ева/-ина, -ский/-ская).
pub fn surname_nominative(word: &str) -> Option<String> {
    if word.chars().count() < 5 {
        return None;
    }
    for (fem, oblique) in [
        ("ова", &["ой", "у", "ою"][..]),
        ("ева", &["ой", "у"]),
        ("ина", &["ой", "у"]),
    ] {
        if word.ends_with(fem) {
            return Some(word.to_string());
        }
        let stem = &fem[..fem.len() - 'а'.len_utf8()];
        for o in oblique {
            if let Some(b) = word.strip_suffix(o)
                && b.ends_with(stem)
            {
                return Some(format!("{b}а"));
            }
        }
    }
    for masc in ["ов", "ев", "ин"] {
        if word.ends_with(masc) {
            return Some(word.to_string());
        }
        for o in ["а", "у", "ым", "е"] {
            if let Some(b) = word.strip_suffix(o)
                && b.ends_with(masc)
            {
                return Some(b.to_string());
            }
        }
    }
    if word.ends_with("ская") || word.ends_with("ский") {
        return Some(word.to_string());
    }
    None
}

/// Loose spelling key for names typed in Latin letters.
pub fn loose_key(word: &str) -> String {
    let mut s = String::with_capacity(word.len());
    let mut prev = ' ';
    for c in word.replace("ия", "я").replace("ья", "я").chars() {
        let c = match c {
            'ь' | 'ъ' => continue,
            'й' | 'ы' => 'и',
            'э' => 'е',
            c => c,
        };
        if c != prev {
            s.push(c);
        }
        prev = c;
    }
    s
}

impl Gazetteer {
    fn build() -> Gazetteer {
        let mut forms: HashMap<String, NameForm> = HashMap::new();
        let mut loose = HashMap::new();
        let mut full = HashMap::new();
        let mut family: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
        for line in NAMES {
            let mut words = line.split(' ');
            let Some(head) = words.next() else { continue };
            for nom in line.split(' ') {
                full.entry(nom).or_insert(head);
                let fam = family.entry(head).or_default();
                if !fam.contains(&nom) {
                    fam.push(nom);
                }
                let common_noun = COMMON_NOUNS.contains(&nom);
                for (i, form) in inflections(nom).into_iter().enumerate() {
                    loose.entry(loose_key(&form)).or_insert(nom);
                    // A nominative never loses its place to another name's oblique form.
                    let entry = NameForm {
                        nominative: nom,
                        common_noun,
                        is_nominative: i == 0,
                    };
                    match forms.get(&form) {
                        Some(prev) if prev.is_nominative || i != 0 => {}
                        _ => {
                            forms.insert(form, entry);
                        }
                    }
                }
            }
        }
        Gazetteer {
            forms,
            loose,
            full,
            family,
        }
    }

    /// The gazetteer name `word` (lowercase, normalised) is a form of.
    pub fn lookup(&self, word: &str) -> Option<NameForm> {
        self.forms.get(word).copied()
    }

    /// Lookup for a word written in Latin letters (already transliterated).
    pub fn lookup_loose(&self, word: &str) -> Option<NameForm> {
        self.lookup(word).or_else(|| {
            self.loose.get(&loose_key(word)).map(|nom| NameForm {
                nominative: nom,
                common_noun: COMMON_NOUNS.contains(nom),
                is_nominative: true,
            })
        })
    }

    /// Every nominative of the same person name ("ольга" → ольга, оля, оленька, олечка).
    pub fn family_of(&self, nominative: &str) -> &[&'static str] {
        self.full
            .get(nominative)
            .and_then(|head| self.family.get(head))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// "ольга петровна" → "Ольга Петровна"; hyphenated parts too ("анна-мария" → "Анна-Мария").
pub fn capitalize_words(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        if at_start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_start = c == ' ' || c == '-';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restores_nominative_from_case_forms() {
        let g = gazetteer();
        for (form, nom) in [
            ("ольгу", "ольга"),
            ("кате", "катя"),
            ("анны", "анна"),
            ("марии", "мария"),
            ("дмитрию", "дмитрий"),
            ("игорем", "игорь"),
            ("павла", "павел"),
            ("светлане", "светлана"),
            ("маше", "маша"),
        ] {
            assert_eq!(g.lookup(form).map(|f| f.nominative), Some(nom), "{form}");
        }
        assert_eq!(g.lookup("маникюр"), None);
        assert_eq!(g.lookup_loose("олга").map(|f| f.nominative), Some("ольга"));
    }

    #[test]
    fn patronymics_and_surnames() {
        assert_eq!(
            patronymic_nominative("игоревне").as_deref(),
            Some("игоревна")
        );
        assert_eq!(
            patronymic_nominative("николаевну").as_deref(),
            Some("николаевна")
        );
        assert_eq!(
            patronymic_nominative("петровича").as_deref(),
            Some("петрович")
        );
        assert_eq!(patronymic_nominative("ольга"), None);
        assert_eq!(surname_nominative("ивановой").as_deref(), Some("иванова"));
        assert_eq!(surname_nominative("петровым").as_deref(), Some("петров"));
        assert_eq!(capitalize_words("ольга петровна"), "Ольга Петровна");
    }

    #[test]
    fn diminutives_share_a_family() {
        assert!(gazetteer().family_of("екатерина").contains(&"катя"));
        assert!(gazetteer().family_of("катя").contains(&"екатерина"));
    }
}
