//! Splitting a Danish address text into the street, postcode and town columns of
//! `organisation.csv`. The old tool cut the text at the first comma and by character position,
//! which broke on floor/door parts, supplementary town names and texts without a comma; this
//! finds the `NNNN Town` part wherever it is.
//!
//! * `"Banegårdspladsen 1, 8800 Viborg"` → `Banegårdspladsen 1` / `8800` / `Viborg`
//! * `"Hovedgaden 1, 2. tv, 5700 Svendborg"` → `Hovedgaden 1, 2. tv` / `5700` / `Svendborg`
//! * `"Hovedgaden 1, Tved, 5700 Svendborg"` → `Hovedgaden 1` / `5700` / `Svendborg`
//!   (the supplementary town name is not part of the street)
//! * `"Hovedgaden 1 5700 Svendborg"` → `Hovedgaden 1` / `5700` / `Svendborg`
//! * a text without a postcode → the whole text as street, empty postcode and town.

/// Street (with floor and door), postcode and town.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    pub street: String,
    pub postcode: String,
    pub town: String,
}

/// `"NNNN Town"`: four digits, whitespace, a town name.
fn postcode_town(part: &str) -> Option<(&str, &str)> {
    let p = part.trim();
    let (code, rest) = p.split_at_checked(4)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let town = rest.trim();
    (!town.is_empty()).then_some((code, town))
}

/// A floor/door part such as `2. tv`, `st.`, `st. th`, `kl.`, `1`, `12. 3`.
fn is_floor_door(part: &str) -> bool {
    let p = part.trim().to_lowercase();
    let first = p.split(['.', ' ']).next().unwrap_or("");
    let floor = first == "st"
        || first == "kl"
        || (!first.is_empty() && first.chars().all(|c| c.is_ascii_digit()))
        || (first.starts_with("kl") && first[2..].chars().all(|c| c.is_ascii_digit()));
    floor && p.len() <= 12
}

pub fn split(text: &str) -> Split {
    let text = text.trim();
    if text.is_empty() {
        return Split::default();
    }
    let parts: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    // The last part that is "NNNN Town".
    if let Some(i) = parts.iter().rposition(|p| postcode_town(p).is_some())
        && i > 0
    {
        let (code, town) = postcode_town(parts[i]).expect("checked");
        let mut street = parts[0].to_string();
        for p in &parts[1..i] {
            if is_floor_door(p) {
                street.push_str(", ");
                street.push_str(p);
            }
        }
        return Split {
            street,
            postcode: code.to_string(),
            town: town.to_string(),
        };
    }
    // No comma before the postcode: "Street 1 8000 Town".
    let words: Vec<&str> = text.split_whitespace().collect();
    if let Some(i) = words
        .iter()
        .rposition(|w| w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()))
        && i > 0
        && i + 1 < words.len()
    {
        return Split {
            street: words[..i].join(" ").trim_end_matches(',').to_string(),
            postcode: words[i].to_string(),
            town: words[i + 1..].join(" "),
        };
    }
    Split {
        street: text.to_string(),
        postcode: String::new(),
        town: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> (String, String, String) {
        let x = split(t);
        (x.street, x.postcode, x.town)
    }
    fn t(a: &str, b: &str, c: &str) -> (String, String, String) {
        (a.into(), b.into(), c.into())
    }

    #[test]
    fn the_awkward_cases() {
        assert_eq!(
            s("Banegårdspladsen 1, 8800 Viborg"),
            t("Banegårdspladsen 1", "8800", "Viborg")
        );
        assert_eq!(
            s("Hovedgaden 1, 2. tv, 5700 Svendborg"),
            t("Hovedgaden 1, 2. tv", "5700", "Svendborg")
        );
        assert_eq!(
            s("Hovedgaden 1, st., 5700 Svendborg"),
            t("Hovedgaden 1, st.", "5700", "Svendborg")
        );
        assert_eq!(
            s("Hovedgaden 1, Tved, 5700 Svendborg"),
            t("Hovedgaden 1", "5700", "Svendborg")
        );
        assert_eq!(
            s("Åboulevarden 12, 3. th, Øster Snede, 8723 Løsning"),
            t("Åboulevarden 12, 3. th", "8723", "Løsning")
        );
        assert_eq!(
            s("Hovedgaden 1 5700 Svendborg"),
            t("Hovedgaden 1", "5700", "Svendborg")
        );
        assert_eq!(
            s("Rådhuspladsen 1, 1550 København V"),
            t("Rådhuspladsen 1", "1550", "København V")
        );
        assert_eq!(s("Postboks 7"), t("Postboks 7", "", ""));
        assert_eq!(s("  "), t("", "", ""));
        assert_eq!(s("8000 Aarhus C"), t("8000 Aarhus C", "", ""));
    }
}
