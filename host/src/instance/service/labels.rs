//! Bounds on what people label instances with: a name and a list of tags
//! are shown in every answer and carried in every notification, so they
//! are kept small.

use crate::instance::ConfigError;

/// Longest instance name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Most tags on one instance.
pub const MAX_TAGS: usize = 50;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 100;

/// Refuses a name or tag list beyond the bounds, naming the field.
pub(super) fn check(name: Option<&str>, tags: Option<&[String]>) -> Result<(), ConfigError> {
    if let Some(name) = name {
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(ConfigError::field(
                "name",
                format!("at most {MAX_NAME_CHARS} characters"),
            ));
        }
    }
    let Some(tags) = tags else { return Ok(()) };
    if tags.len() > MAX_TAGS {
        return Err(ConfigError::field(
            "tags",
            format!("at most {MAX_TAGS} tags, got {}", tags.len()),
        ));
    }
    if let Some(i) = tags.iter().position(|t| t.chars().count() > MAX_TAG_CHARS) {
        return Err(ConfigError::field(
            format!("tags[{i}]"),
            format!("at most {MAX_TAG_CHARS} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags_within_bounds_pass_and_beyond_are_named() {
        let tags = |n: usize, len: usize| vec!["t".repeat(len); n];
        assert!(check(
            Some(&"n".repeat(MAX_NAME_CHARS)),
            Some(&tags(MAX_TAGS, MAX_TAG_CHARS))
        )
        .is_ok());
        let e = check(Some(&"é".repeat(MAX_NAME_CHARS + 1)), None).unwrap_err();
        assert_eq!(e.field, "name");
        let e = check(None, Some(&tags(MAX_TAGS + 1, 1))).unwrap_err();
        assert_eq!(e.field, "tags");
        let mut long = tags(3, 1);
        long[2] = "x".repeat(MAX_TAG_CHARS + 1);
        assert_eq!(check(None, Some(&long)).unwrap_err().field, "tags[2]");
    }
}
