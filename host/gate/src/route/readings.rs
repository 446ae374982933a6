//! Every path a server could route a request to: percent-decoded, with `\` read as `/`,
//! `;parameters` dropped, slashes merged and dot segments resolved, as some registry or
//! proxy in front of it does.

use super::MAX_DECODINGS;

/// Every path a server could route `path` to: as sent and percent-decoded up to
/// [`MAX_DECODINGS`] times; each also with `\` read as `/` and `;parameters` dropped from
/// segments; each of those also with repeated slashes merged, dot segments resolved and a
/// trailing slash dropped. `None` if a reading is not printable ASCII (some servers map
/// look-alike characters to ASCII) or the path is still encoded after the last decoding.
pub(super) fn readings(path: &str) -> Option<Vec<String>> {
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let mut layers = vec![path.to_string()];
    loop {
        match percent_decode(layers.last().expect("one at least")) {
            Decoded::Unchanged => break,
            Decoded::Text(next) if layers.len() <= MAX_DECODINGS => layers.push(next),
            Decoded::Text(_) | Decoded::Unprintable => return None,
        }
    }
    let mut readings: Vec<String> = Vec::new();
    for layer in &layers {
        let slashed = layer.replace('\\', "/");
        let variants =
            [without_parameters(layer), without_parameters(&slashed), slashed, layer.clone()];
        for variant in variants {
            for reading in [clean(&variant), variant] {
                if !readings.contains(&reading) {
                    readings.push(reading);
                }
            }
        }
    }
    Some(readings)
}

enum Decoded {
    /// No `%XX` escape in the text.
    Unchanged,
    Text(String),
    /// The decoded bytes are not printable ASCII.
    Unprintable,
}

fn percent_decode(text: &str) -> Decoded {
    let bytes = text.as_bytes();
    let hex = |i: usize| bytes.get(i).and_then(|b| (*b as char).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    if out.len() == bytes.len() {
        Decoded::Unchanged
    } else if out.iter().all(|b| b.is_ascii_graphic()) {
        Decoded::Text(String::from_utf8(out).expect("printable ASCII"))
    } else {
        Decoded::Unprintable
    }
}

fn without_parameters(path: &str) -> String {
    path.split('/')
        .map(|segment| segment.split(';').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("/")
}

/// Merge repeated slashes, resolve `.` and `..`, drop a trailing slash.
fn clean(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            segment => kept.push(segment),
        }
    }
    format!("/{}", kept.join("/"))
}
