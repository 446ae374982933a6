//! A policy's metadata read from a JSON file at compile time, for [`include_metadata!`]: one
//! file that a policy and its ports in other languages all read, instead of a copy in each.
//!
//! The file is one JSON object whose values are strings, with exactly the fields `name`,
//! `version`, `description` and `settings_example` (the settings example as JSON *text*, so
//! that every language shows the same bytes). It is read in `const` evaluation: a malformed
//! file, or a missing, repeated or unknown field, is a compile error that says which.
//!
//! [`include_metadata!`]: crate::include_metadata

/// The fields of the file, each required once.
const FIELDS: [&str; 4] = ["name", "version", "description", "settings_example"];

/// The length in bytes of string field `key` of the metadata `json`, unescaped.
pub const fn field_len(json: &str, key: &str) -> usize {
    read(json.as_bytes(), key.as_bytes(), &mut [])
}

/// String field `key` of the metadata `json`, unescaped; `N` is its [`field_len`].
pub const fn field<const N: usize>(json: &str, key: &str) -> [u8; N] {
    let mut out = [0; N];
    read(json.as_bytes(), key.as_bytes(), &mut out);
    out
}

/// The bytes of a [`field`] as text: they are UTF-8, since the file is and escapes are checked.
pub const fn as_str(bytes: &'static [u8]) -> &'static str {
    match core::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => panic!("policy metadata: a field is not UTF-8"),
    }
}

/// Check the whole object and answer the unescaped length of field `key`, writing as much of
/// it as fits into `out` (nothing when counting, all of it once `out` has that length).
const fn read(json: &[u8], key: &[u8], out: &mut [u8]) -> usize {
    let mut reader = Reader { json, at: 0 };
    let mut seen = [false; FIELDS.len()];
    let mut len = None;
    reader.space();
    reader.eat(b'{');
    reader.space();
    if !reader.next_is(b'}') {
        loop {
            // A field's name is compared as written: no escapes in the four names.
            let (start, end, _) = reader.string(&mut []);
            let name = json.split_at(end).0.split_at(start).1;
            let index = field_index(name);
            if seen[index] {
                panic!("policy metadata: a field is given twice");
            }
            seen[index] = true;
            reader.space();
            reader.eat(b':');
            reader.space();
            if eq(name, key) {
                len = Some(reader.string(out).2);
            } else {
                reader.string(&mut []);
            }
            reader.space();
            if !reader.next_is(b',') {
                break;
            }
            reader.eat(b',');
            reader.space();
        }
    }
    reader.eat(b'}');
    reader.space();
    if reader.at != json.len() {
        panic!("policy metadata: text after the object");
    }
    let mut index = 0;
    while index < seen.len() {
        if !seen[index] {
            panic!(
                "policy metadata: a field is missing; name, version, description and settings_example are required"
            );
        }
        index += 1;
    }
    match len {
        Some(len) => len,
        None => panic!("policy metadata: asked for a field that is not one of the four"),
    }
}

/// The index in [`FIELDS`] of field `name`; any other name is a mistake (most often a typo).
const fn field_index(name: &[u8]) -> usize {
    let mut index = 0;
    while index < FIELDS.len() {
        if eq(name, FIELDS[index].as_bytes()) {
            return index;
        }
        index += 1;
    }
    panic!(
        "policy metadata: an unknown field; the fields are name, version, description and settings_example"
    )
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A position in the JSON text.
struct Reader<'a> {
    json: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    const fn next_is(&self, byte: u8) -> bool {
        self.at < self.json.len() && self.json[self.at] == byte
    }

    const fn eat(&mut self, byte: u8) {
        if !self.next_is(byte) {
            panic!("policy metadata: not a JSON object of strings");
        }
        self.at += 1;
    }

    const fn space(&mut self) {
        while self.at < self.json.len()
            && matches!(self.json[self.at], b' ' | b'\t' | b'\n' | b'\r')
        {
            self.at += 1;
        }
    }

    /// Read a string, writing its unescaped bytes into `out` as far as they fit; answer
    /// where its contents start and end in the text, and its unescaped length.
    const fn string(&mut self, out: &mut [u8]) -> (usize, usize, usize) {
        self.eat(b'"');
        let start = self.at;
        let mut len = 0;
        loop {
            if self.at >= self.json.len() {
                panic!("policy metadata: a string is not closed");
            }
            let byte = self.json[self.at];
            self.at += 1;
            match byte {
                b'"' => break,
                0..=0x1f => panic!("policy metadata: a control character in a string; escape it"),
                b'\\' => {
                    let char = self.escape();
                    let mut bytes = [0; 4];
                    let width = utf8(char, &mut bytes);
                    let mut i = 0;
                    while i < width {
                        put(out, &mut len, bytes[i]);
                        i += 1;
                    }
                }
                // Any other byte, of a multi-byte character too, stands for itself.
                _ => put(out, &mut len, byte),
            }
        }
        (start, self.at - 1, len)
    }

    /// The character of the escape after a backslash.
    const fn escape(&mut self) -> u32 {
        if self.at >= self.json.len() {
            panic!("policy metadata: a string is not closed");
        }
        let byte = self.json[self.at];
        self.at += 1;
        match byte {
            b'"' | b'\\' | b'/' => byte as u32,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => 0x0a,
            b'r' => 0x0d,
            b't' => 0x09,
            b'u' => {
                let first = self.hex4();
                match first {
                    0xd800..=0xdbff => {
                        // A character beyond the BMP: the low surrogate follows as `\uXXXX`.
                        if !self.next_is(b'\\') {
                            panic!("policy metadata: a \\u surrogate without its pair");
                        }
                        self.at += 1;
                        self.eat(b'u');
                        let second = self.hex4();
                        if !matches!(second, 0xdc00..=0xdfff) {
                            panic!("policy metadata: a \\u surrogate without its pair");
                        }
                        0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
                    }
                    0xdc00..=0xdfff => panic!("policy metadata: a \\u surrogate without its pair"),
                    _ => first,
                }
            }
            _ => panic!("policy metadata: an unknown escape in a string"),
        }
    }

    const fn hex4(&mut self) -> u32 {
        let mut value = 0;
        let mut i = 0;
        while i < 4 {
            if self.at >= self.json.len() {
                panic!("policy metadata: a \\u escape needs four hex digits");
            }
            let digit = match self.json[self.at] {
                byte @ b'0'..=b'9' => byte - b'0',
                byte @ b'a'..=b'f' => byte - b'a' + 10,
                byte @ b'A'..=b'F' => byte - b'A' + 10,
                _ => panic!("policy metadata: a \\u escape needs four hex digits"),
            };
            value = value * 16 + digit as u32;
            self.at += 1;
            i += 1;
        }
        value
    }
}

/// Count `byte`, and write it if `out` has room (it has none while counting).
const fn put(out: &mut [u8], len: &mut usize, byte: u8) {
    if *len < out.len() {
        out[*len] = byte;
    }
    *len += 1;
}

/// `char` (a scalar value: surrogates are refused before) as UTF-8; answer its width.
const fn utf8(char: u32, out: &mut [u8; 4]) -> usize {
    if char < 0x80 {
        out[0] = char as u8;
        1
    } else if char < 0x800 {
        out[0] = 0xc0 | (char >> 6) as u8;
        out[1] = 0x80 | (char & 0x3f) as u8;
        2
    } else if char < 0x10000 {
        out[0] = 0xe0 | (char >> 12) as u8;
        out[1] = 0x80 | ((char >> 6) & 0x3f) as u8;
        out[2] = 0x80 | (char & 0x3f) as u8;
        3
    } else {
        out[0] = 0xf0 | (char >> 18) as u8;
        out[1] = 0x80 | ((char >> 12) & 0x3f) as u8;
        out[2] = 0x80 | ((char >> 6) & 0x3f) as u8;
        out[3] = 0x80 | (char & 0x3f) as u8;
        4
    }
}

#[cfg(test)]
mod tests {
    use super::{field, field_len};

    /// What the file says, read at run time (the same functions as at compile time).
    fn read(json: &str, key: &str) -> String {
        let mut out = vec![0; field_len(json, key)];
        super::read(json.as_bytes(), key.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    const JSON: &str = r#"{
      "name": "min-tags",
      "version" : "0.1.0",
      "description":"A \"new\" image \u00e9\u20ac\ud83d\ude00 \/ \\ \b\f\n\r\t é",
      "settings_example": "{\"required\":[\"\\\\d+\"]}"
    }"#;

    #[test]
    fn reads_each_field_as_json_does() {
        let parsed: serde_json::Value = serde_json::from_str(JSON).unwrap();
        for key in ["name", "version", "description", "settings_example"] {
            assert_eq!(read(JSON, key), parsed[key].as_str().unwrap(), "{key}");
        }
        assert_eq!(read(JSON, "settings_example"), r#"{"required":["\\d+"]}"#);
    }

    #[test]
    fn reads_in_const_evaluation() {
        const LEN: usize = field_len(JSON, "name");
        const NAME: [u8; LEN] = field::<LEN>(JSON, "name");
        const TEXT: &str = super::as_str(&NAME);
        assert_eq!(TEXT, "min-tags");
    }

    #[test]
    fn refuses_what_is_not_metadata() {
        let all = r#""name":"a","version":"1","description":"d","settings_example":"{}""#;
        for (json, error) in [
            (format!("{{{all}}}"), None),
            (format!("{{{all},\"nmae\":\"a\"}}"), Some("an unknown field")),
            (format!("{{{all},\"name\":\"b\"}}"), Some("given twice")),
            (r#"{"name":"a","version":"1","description":"d"}"#.into(), Some("missing")),
            (format!("{{{all}}} x"), Some("text after the object")),
            (format!("[{{{all}}}]"), Some("not a JSON object of strings")),
            (format!("{{{}}}", all.replace("\"1\"", "1")), Some("not a JSON object of strings")),
            (r#"{"name":"a"#.into(), Some("not closed")),
            (format!("{{{}}}", all.replace("\"d\"", "\"\\x\"")), Some("unknown escape")),
            (format!("{{{}}}", all.replace("\"d\"", "\"\\ud800\"")), Some("surrogate")),
            (format!("{{{}}}", all.replace("\"d\"", "\"\\u12\"")), Some("four hex digits")),
            (format!("{{{}}}", all.replace("\"d\"", "\"\t\"")), Some("control character")),
        ] {
            let result = std::panic::catch_unwind(|| read(&json, "name"));
            match error {
                None => assert_eq!(result.unwrap(), "a"),
                Some(error) => {
                    let panic = result.unwrap_err();
                    let message = panic.downcast_ref::<&str>().copied().unwrap_or_default();
                    assert!(message.contains(error), "{json}: `{message}`, not `{error}`");
                }
            }
        }
    }
}
