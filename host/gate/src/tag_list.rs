//! A registry's tag list (`GET /v2/<name>/tags/list`, `{"name": …, "tags": [ … ]}`), or its
//! catalog (`GET /v2/_catalog`, `{"repositories": [ … ]}`), read as it arrives: CNCF distribution 2.8 sends every tag of a repository in one answer (a
//! million tags is tens of megabytes), so the gate takes the tags out of each chunk and
//! keeps nothing but the token being read.

/// Longest token (a string, a number) accepted: tags are at most 128 characters.
const MAX_TOKEN_BYTES: usize = 4096;
/// Deepest nesting accepted in the document.
const MAX_DEPTH: usize = 64;

/// Why a tag list cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an unreadable tag list: {0}")]
pub struct TagListError(String);

/// Reads the tags of a tag list document (or the names of a catalog) fed in chunks.
#[derive(Debug)]
pub struct TagListReader {
    /// The top-level key whose array holds the names: `tags`, or `repositories`.
    list: &'static str,
    /// Open containers: `true` for an object, `false` for an array.
    stack: Vec<bool>,
    /// The last key read in the top-level object, while its value is being read.
    key: Option<String>,
    /// Whether the next string in the current object is a key.
    expect_key: bool,
    /// A string being read (its raw bytes, escapes included) and whether the last byte was a
    /// backslash.
    string: Option<(Vec<u8>, bool)>,
    /// A bare word being read (`null`, a number, `true`).
    word: Vec<u8>,
    /// The document has ended.
    done: bool,
}

impl TagListReader {
    /// A reader of a tag list.
    #[cfg(test)]
    pub fn new() -> Self {
        Self::of("tags")
    }

    /// A reader of the strings in the array under the top-level key `list`.
    pub fn of(list: &'static str) -> Self {
        TagListReader {
            list,
            stack: Vec::new(),
            key: None,
            expect_key: false,
            string: None,
            word: Vec::new(),
            done: false,
        }
    }

    /// Read `chunk`; the tags it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<String>, TagListError> {
        let mut tags = Vec::new();
        for &byte in chunk {
            if let Some((raw, escaped)) = &mut self.string {
                if *escaped {
                    *escaped = false;
                } else if byte == b'\\' {
                    *escaped = true;
                } else if byte == b'"' {
                    let raw = std::mem::take(raw);
                    self.string = None;
                    self.end_string(&raw, &mut tags)?;
                    continue;
                }
                if raw.len() >= MAX_TOKEN_BYTES {
                    return Err(TagListError(format!(
                        "a string longer than {MAX_TOKEN_BYTES} bytes"
                    )));
                }
                raw.push(byte);
                continue;
            }
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'+' | b'.') {
                if self.word.len() >= MAX_TOKEN_BYTES {
                    return Err(TagListError("a value too long".into()));
                }
                self.word.push(byte);
                continue;
            }
            self.end_word()?;
            match byte {
                b' ' | b'\t' | b'\r' | b'\n' => {}
                b'"' => {
                    self.check_open()?;
                    self.string = Some((Vec::new(), false));
                }
                b'{' | b'[' => {
                    self.check_open()?;
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(TagListError("nested too deep".into()));
                    }
                    self.stack.push(byte == b'{');
                    self.expect_key = byte == b'{';
                }
                b'}' | b']' => {
                    let object = self.stack.pop().ok_or_else(|| unexpected(byte))?;
                    if object != (byte == b'}') {
                        return Err(unexpected(byte));
                    }
                    self.end_value();
                }
                b':' => {}
                b',' => self.expect_key = self.stack.last() == Some(&true),
                other => return Err(unexpected(other)),
            }
        }
        Ok(tags)
    }

    /// The document ended: check that it was whole.
    pub fn finish(mut self) -> Result<(), TagListError> {
        self.end_word()?;
        if !self.done || self.string.is_some() {
            return Err(TagListError("it ends early".into()));
        }
        Ok(())
    }

    fn check_open(&self) -> Result<(), TagListError> {
        if self.done {
            return Err(TagListError("more after the end of the document".into()));
        }
        Ok(())
    }

    fn end_string(&mut self, raw: &[u8], tags: &mut Vec<String>) -> Result<(), TagListError> {
        let text: String = serde_json::from_slice(&[b"\"", raw, b"\""].concat())
            .map_err(|e| TagListError(format!("a string that is not JSON: {e}")))?;
        match self.stack.len() {
            1 if self.expect_key => {
                self.key = Some(text);
                self.expect_key = false;
            }
            2 if self.stack == [true, false] && self.key.as_deref() == Some(self.list) => {
                tags.push(text);
            }
            0 => return Err(TagListError("a string where an object was expected".into())),
            _ => self.end_value(),
        }
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), TagListError> {
        if self.word.is_empty() {
            return Ok(());
        }
        let word = std::mem::take(&mut self.word);
        if self.stack.is_empty() {
            return Err(TagListError(format!(
                "`{}` where an object was expected",
                String::from_utf8_lossy(&word)
            )));
        }
        self.end_value();
        Ok(())
    }

    /// A value ended: a top-level key's value, or the document.
    fn end_value(&mut self) {
        match self.stack.len() {
            0 => self.done = true,
            1 => self.key = None,
            _ => {}
        }
    }
}

fn unexpected(byte: u8) -> TagListError {
    TagListError(format!("an unexpected `{}`", char::from(byte).escape_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(document: &[u8], chunk: usize) -> Result<Vec<String>, TagListError> {
        let mut reader = TagListReader::new();
        let mut tags = Vec::new();
        for part in document.chunks(chunk) {
            tags.extend(reader.feed(part)?);
        }
        reader.finish()?;
        Ok(tags)
    }

    #[test]
    fn a_catalog_gives_its_repositories_and_nothing_else() {
        let document = br#"{"repositories":["team/app","team/web"],"tags":["not-a-repository"]}"#;
        let mut reader = TagListReader::of("repositories");
        let names: Vec<String> =
            document.chunks(5).flat_map(|part| reader.feed(part).unwrap()).collect();
        reader.finish().unwrap();
        assert_eq!(names, ["team/app", "team/web"]);
    }

    #[test]
    fn tags_come_out_of_any_chunking() {
        let document = br#"{"name":"team/app","tags":["1.0","latest","a\"b","\u0031x"],"other":{"tags":["no"]}}"#;
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(read(document, chunk).unwrap(), ["1.0", "latest", "a\"b", "1x"], "{chunk}");
        }
        let spaced = b"{ \"tags\" : [ \"a\" , \"b\" ] , \"name\" : \"x\" }\n";
        assert_eq!(read(spaced, 3).unwrap(), ["a", "b"]);
        assert_eq!(read(br#"{"name":"x","tags":null}"#, 4).unwrap(), Vec::<String>::new());
        assert_eq!(read(br#"{"name":"x"}"#, 4).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn broken_documents_are_refused() {
        for broken in [
            &br#"{"tags":["a","b"]"#[..],
            br#"{"tags":["a",}"#,
            br#"["a"]x"#,
            br#"{"tags":["a"]}{"#,
            br#"{"tags":["unterminated"#,
            b"nonsense",
        ] {
            assert!(read(broken, 2).is_err(), "{}", String::from_utf8_lossy(broken));
        }
        let long = format!(r#"{{"tags":["{}"]}}"#, "x".repeat(5000));
        assert!(read(long.as_bytes(), 100).unwrap_err().0.contains("longer than"));
    }
}
