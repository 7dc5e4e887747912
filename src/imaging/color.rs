//! The one colour parser, for text boxes, scrims and rendition pads alike.

/// Parse `#rgb`, `#rgba`, `#rrggbb` or `#rrggbbaa` into straight RGBA.
pub fn parse_color(s: &str) -> Result<[u8; 4], String> {
    let bad = || {
        format!("colour `{s}` must be #rrggbb or #rrggbbaa (also #rgb, #rgba), e.g. \"#ffffff\"")
    };
    let hex = s.strip_prefix('#').ok_or_else(bad)?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let nibble = |i: usize| u8::from_str_radix(&hex[i..=i], 16).map_err(|_| bad());
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
    match hex.len() {
        3 | 4 => {
            let mut out = [255u8; 4];
            for (i, o) in out.iter_mut().enumerate().take(hex.len()) {
                *o = nibble(i)? * 17;
            }
            Ok(out)
        }
        6 | 8 => {
            let mut out = [255u8; 4];
            for (i, o) in out.iter_mut().enumerate().take(hex.len() / 2) {
                *o = byte(i * 2)?;
            }
            Ok(out)
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse_in_every_documented_form_and_reject_the_rest() {
        assert_eq!(parse_color("#ffffff"), Ok([255, 255, 255, 255]));
        assert_eq!(parse_color("#00000080"), Ok([0, 0, 0, 128]));
        assert_eq!(parse_color("#f00"), Ok([255, 0, 0, 255]));
        assert_eq!(parse_color("#0008"), Ok([0, 0, 0, 136]));
        for bad in ["ffffff", "#ff", "#gggggg", "#1234567", "#ffé"] {
            assert!(parse_color(bad).is_err(), "{bad}");
        }
    }
}
