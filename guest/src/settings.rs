//! Settings arrive as JSON text; errors name the field path (`owners[0].pattern`).

use serde::de::DeserializeOwned;

pub(crate) fn parse<T: DeserializeOwned>(json: &str) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let message = without_position(&err.inner().to_string());
        if path == "." {
            format!("settings: {message}")
        } else {
            format!("settings.{path}: {message}")
        }
    })
}

/// serde_json appends "at line 1 column 17"; the host hands over one-line JSON that the
/// operator never wrote in that form, so the position would only mislead.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        min_tags: u32,
        #[serde(default)]
        owners: Vec<Owner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Owner {
        actors: Vec<String>,
    }

    #[test]
    fn unknown_field_names_the_path_without_json_position() {
        let err =
            parse::<Example>(r#"{"min_tags":1,"owners":[{"actors":[],"who":1}]}"#).unwrap_err();
        assert!(
            err.starts_with("settings.owners[0].who: unknown field `who`, expected `actors`"),
            "{err}"
        );
        assert!(!err.contains("line 1"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse::<Example>(r#"{"min_tags":"two"}"#).unwrap_err();
        assert!(err.starts_with("settings.min_tags: invalid type: string \"two\""), "{err}");
    }

    #[test]
    fn valid_settings_parse() {
        let parsed = parse::<Example>(r#"{"min_tags":3}"#).unwrap();
        assert_eq!(parsed.min_tags, 3);
    }
}
