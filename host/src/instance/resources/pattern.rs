//! Java `SimpleDateFormat` patterns, translated once into `time` format
//! descriptions and then used to write dates into poll URLs and to read the
//! dates of polled records.
//!
//! Supported letters: `y` (`yy` two-digit, anything else the full year),
//! `M`/`L` (`M`, `MM`, `MMM` short name, `MMMM` long name), `d`, `D`, `H`,
//! `h`, `m`, `s`, `S` (`SSS` milliseconds; `S`×n reads and writes n digits of
//! the fraction), `a` (AM/PM), `E` (`EEE` short, `EEEE` long day name), `u`
//! (day number, Monday = 1), `X`/`XX`/`XXX` (ISO 8601 offset, `Z` for UTC)
//! and `Z` (`+hhmm`). Text in single quotes is literal, `''` is a quote, and
//! any other non-letter stands for itself. Other letters (`z`, `G`, `Y`, `k`,
//! `K`, `w`, `W`, `F`) are refused with a message naming them. Names are
//! English, as in Java's default `Locale.ROOT` formats; reading ignores case.

use time::format_description::{self, OwnedFormatItem};
use time::parsing::Parsed;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::zone::Zone;

/// A translated pattern.
#[derive(Clone, Debug)]
pub struct JavaPattern {
    source: String,
    /// For offsets of zero (`X` writes `Z`).
    format_utc: OwnedFormatItem,
    /// For other offsets.
    format_offset: OwnedFormatItem,
    /// For reading (`X` accepts `Z` or an offset).
    parse: OwnedFormatItem,
    has_date: bool,
    has_offset: bool,
}

/// One piece of a Java pattern.
#[derive(Clone, Debug, PartialEq)]
enum Token {
    Literal(String),
    Field(char, usize),
}

/// What a translation is for: `X` differs between them.
#[derive(Clone, Copy, PartialEq)]
enum Use {
    FormatUtc,
    FormatOffset,
    Parse,
}

impl JavaPattern {
    /// Translates `pattern`; the error names the problem.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let tokens = tokenize(pattern)?;
        let build = |purpose| {
            let text = translate(&tokens, purpose)?;
            format_description::parse_owned::<2>(&text)
                .map_err(|e| format!("pattern {pattern:?} cannot be translated: {e}"))
        };
        let has = |letters: &[char]| {
            tokens
                .iter()
                .any(|t| matches!(t, Token::Field(c, _) if letters.contains(c)))
        };
        Ok(Self {
            source: pattern.to_string(),
            format_utc: build(Use::FormatUtc)?,
            format_offset: build(Use::FormatOffset)?,
            parse: build(Use::Parse)?,
            has_date: has(&['y']) && (has(&['D']) || (has(&['M', 'L']) && has(&['d']))),
            has_offset: has(&['X', 'Z']),
        })
    }

    /// Whether the pattern names a whole date (year, and month and day or day of year).
    pub fn has_date(&self) -> bool {
        self.has_date
    }

    /// Writes instant `t` as `zone`'s wall clock shows it.
    pub fn format(&self, t: OffsetDateTime, zone: &Zone) -> String {
        let local = zone.local(t);
        let items = if local.offset().is_utc() {
            &self.format_utc
        } else {
            &self.format_offset
        };
        local.format(items).unwrap_or_default()
    }

    /// Reads `text`; a date without an offset is a wall-clock time in `zone`.
    pub fn parse(&self, text: &str, zone: &Zone) -> Result<OffsetDateTime, String> {
        let mut parsed = Parsed::new();
        let rest = parsed
            .parse_item(text.trim().as_bytes(), &self.parse)
            .map_err(|e| format!("{text:?} does not match {:?}: {e}", self.source))?;
        if !rest.is_empty() {
            return Err(format!(
                "{text:?} has text after the {:?} date",
                self.source
            ));
        }
        let local = local_date_time(&parsed)
            .ok_or_else(|| format!("{text:?} is not a valid date for {:?}", self.source))?;
        match parsed.offset_hour().filter(|_| self.has_offset) {
            Some(hours) => {
                let minutes = parsed.offset_minute_signed().unwrap_or(0);
                let offset = UtcOffset::from_hms(hours, minutes, 0).map_err(|e| e.to_string())?;
                Ok(local.assume_offset(offset))
            }
            None => zone.resolve(local),
        }
    }
}

/// The wall-clock date and time a parse found (missing time parts are zero).
fn local_date_time(parsed: &Parsed) -> Option<PrimitiveDateTime> {
    let year = match (parsed.year(), parsed.year_last_two()) {
        (Some(year), _) => year,
        (None, Some(two)) => pivot_two_digit_year(two, OffsetDateTime::now_utc().year()),
        (None, None) => return None,
    };
    let date = match (parsed.month(), parsed.day(), parsed.ordinal()) {
        (Some(month), Some(day), _) => Date::from_calendar_date(year, month, day.get()).ok()?,
        (_, _, Some(ordinal)) => Date::from_ordinal_date(year, ordinal.get()).ok()?,
        _ => Date::from_calendar_date(year, Month::January, 1).ok()?,
    };
    let hour = match (parsed.hour_24(), parsed.hour_12(), parsed.hour_12_is_pm()) {
        (Some(hour), _, _) => hour,
        (None, Some(h12), pm) => h12.get() % 12 + if pm == Some(true) { 12 } else { 0 },
        (None, None, _) => 0,
    };
    let time = Time::from_hms_nano(
        hour,
        parsed.minute().unwrap_or(0),
        parsed.second().unwrap_or(0),
        parsed.subsecond().unwrap_or(0),
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time))
}

/// Java's reading of `yy`: the year within 80 years before and 20 after now.
fn pivot_two_digit_year(two: u8, now_year: i32) -> i32 {
    let start = now_year - 80;
    let mut year = start - start.rem_euclid(100) + i32::from(two);
    if year < start {
        year += 100;
    }
    year
}

/// Splits a pattern into literals and runs of one letter.
fn tokenize(pattern: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    let mut literal = String::new();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if chars.peek() == Some(&'\'') {
                chars.next();
                literal.push('\'');
                continue;
            }
            loop {
                match chars.next() {
                    None => return Err(format!("pattern {pattern:?} has an unclosed quote")),
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        literal.push('\'');
                    }
                    Some('\'') => break,
                    Some(other) => literal.push(other),
                }
            }
        } else if c.is_ascii_alphabetic() {
            let mut count = 1;
            while chars.peek() == Some(&c) {
                chars.next();
                count += 1;
            }
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(Token::Field(c, count));
        } else {
            literal.push(c);
        }
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

/// The `time` (version 2) format description of the tokens.
fn translate(tokens: &[Token], purpose: Use) -> Result<String, String> {
    let mut out = String::new();
    for token in tokens {
        match token {
            Token::Literal(text) => {
                for c in text.chars() {
                    if matches!(c, '[' | ']' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            Token::Field(letter, count) => out.push_str(&field(*letter, *count, purpose)?),
        }
    }
    Ok(out)
}

/// The format description of one run of a pattern letter.
fn field(letter: char, count: usize, purpose: Use) -> Result<String, String> {
    let padded = |name: &str, extra: &str| match count {
        1 => format!("[{name}{extra} padding:none]"),
        _ => format!("[{name}{extra}]"),
    };
    Ok(match letter {
        'y' if count == 2 => "[year repr:last_two]".into(),
        'y' => "[year]".into(),
        'M' | 'L' => match count {
            1 | 2 => padded("month", ""),
            3 => "[month repr:short case_sensitive:false]".into(),
            _ => "[month repr:long case_sensitive:false]".into(),
        },
        'd' => padded("day", ""),
        'D' if count >= 3 => "[ordinal]".into(),
        'D' => "[ordinal padding:none]".into(),
        'H' => padded("hour", ""),
        'h' => padded("hour", " repr:12"),
        'm' => padded("minute", ""),
        's' => padded("second", ""),
        'S' if count <= 9 => format!("[subsecond digits:{count}]"),
        'S' => return Err("S can stand for at most 9 digits".into()),
        'a' => "[period case_sensitive:false]".into(),
        'E' if count <= 3 => "[weekday repr:short case_sensitive:false]".into(),
        'E' => "[weekday case_sensitive:false]".into(),
        'u' => "[weekday repr:monday]".into(),
        'Z' => "[offset_hour sign:mandatory][offset_minute]".into(),
        'X' => {
            let offset = match count {
                1 => "[offset_hour sign:mandatory]",
                2 => "[offset_hour sign:mandatory][offset_minute]",
                3 => "[offset_hour sign:mandatory]:[offset_minute]",
                _ => return Err("X takes 1 to 3 letters".into()),
            };
            match purpose {
                Use::FormatUtc => "Z".into(),
                Use::FormatOffset => offset.into(),
                Use::Parse => format!("[first [Z][{offset}]]"),
            }
        }
        'z' => return Err("pattern letter z (zone name) is not supported; use X or Z".into()),
        'Y' => return Err("pattern letter Y is the week-based year; use y".into()),
        other => return Err(format!("pattern letter {other} is not supported")),
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const T: OffsetDateTime = datetime!(2024-03-05 14:07:09.042 UTC);

    fn fmt(pattern: &str, zone: &str) -> String {
        JavaPattern::new(pattern)
            .unwrap()
            .format(T, &Zone::parse(zone).unwrap())
    }

    #[test]
    fn formats_like_simple_date_format() {
        assert_eq!(
            fmt("yyyy-MM-dd'T'HH:mm:ss'Z'", "GMT"),
            "2024-03-05T14:07:09Z"
        );
        assert_eq!(
            fmt("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "UTC"),
            "2024-03-05T14:07:09.042Z"
        );
        assert_eq!(
            fmt("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "America/New_York"),
            "2024-03-05T09:07:09.042-05:00"
        );
        assert_eq!(fmt("yyyyMMddHHmmssZ", "GMT+05:30"), "20240305193709+0530");
        assert_eq!(
            fmt("EEE, dd MMM yy hh:mm a", "UTC"),
            "Tue, 05 Mar 24 02:07 PM"
        );
        assert_eq!(fmt("d/M/yyyy H:m:s", "UTC"), "5/3/2024 14:7:9");
        assert_eq!(
            fmt("''yyyy'' 'o''clock' [\\-]", "UTC"),
            "'2024' o'clock [\\-]"
        );
        assert_eq!(
            fmt("yyyy-MM-dd'T'HH:mmXX", "Asia/Kolkata"),
            "2024-03-05T19:37+0530"
        );
    }

    #[test]
    fn parses_with_and_without_offsets() {
        let utc = Zone::UTC;
        let p = JavaPattern::new("yyyy-MM-dd'T'HH:mm:ss'Z'").unwrap();
        assert_eq!(
            p.parse("2024-03-05T14:07:09Z", &utc).unwrap(),
            datetime!(2024-03-05 14:07:09 UTC)
        );
        let p = JavaPattern::new("yyyy-MM-dd'T'HH:mm:ss.SSSXXX").unwrap();
        assert_eq!(p.parse("2024-03-05T09:07:09.042-05:00", &utc).unwrap(), T);
        assert_eq!(p.parse("2024-03-05T14:07:09.042Z", &utc).unwrap(), T);
        let ny = Zone::parse("America/New_York").unwrap();
        let p = JavaPattern::new("MM/dd/yyyy hh:mm:ss a").unwrap();
        assert_eq!(
            p.parse("07/15/2024 08:00:00 am", &ny).unwrap(),
            datetime!(2024-07-15 12:00 UTC)
        );
        let p = JavaPattern::new("dd MMM yy").unwrap();
        assert_eq!(
            p.parse("05 mar 24", &utc).unwrap(),
            datetime!(2024-03-05 0:00 UTC)
        );
        assert!(p.parse("05 Mar 2024", &utc).is_err());
        assert!(p.parse("31 Feb 24", &utc).is_err());
    }

    #[test]
    fn refuses_what_it_cannot_translate() {
        for (pattern, why) in [
            ("yyyy-MM-dd'T", "unclosed quote"),
            ("YYYY-MM-dd", "week-based"),
            ("HH:mm z", "zone name"),
            ("GGG", "letter G"),
            ("XXXX", "1 to 3"),
        ] {
            let err = JavaPattern::new(pattern).unwrap_err();
            assert!(err.contains(why), "{pattern}: {err}");
        }
        assert!(!JavaPattern::new("HH:mm").unwrap().has_date());
        assert!(JavaPattern::new("yyyy-MM-dd").unwrap().has_date());
    }

    #[test]
    fn two_digit_years_pivot_like_java() {
        assert_eq!(pivot_two_digit_year(24, 2025), 2024);
        assert_eq!(pivot_two_digit_year(44, 2025), 2044);
        assert_eq!(pivot_two_digit_year(45, 2025), 1945);
        assert_eq!(pivot_two_digit_year(99, 2025), 1999);
    }
}
