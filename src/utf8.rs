//! The one UTF-8 check of input text: SIMD first (`simdutf8`, several times
//! the standard library's speed on the long ASCII runs of CSV rows and JSON
//! lines), and the standard library's check only for text that fails, to
//! say where.

/// `bytes` as text, or the standard library's error (with `valid_up_to`).
pub(crate) fn text(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(_) => std::str::from_utf8(bytes),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_answer_as_the_standard_library() {
        let samples: [&[u8]; 7] = [
            b"",
            b"plain ascii, 1,2,3",
            "Zürich 東京 🚀".as_bytes(),
            b"bad \xff here",
            b"cut \xe6\x9d",
            b"\xed\xa0\x80 surrogate",
            b"overlong \xc0\xaf",
        ];
        for s in samples {
            let ours = super::text(s).map_err(|e| e.valid_up_to());
            let std = std::str::from_utf8(s).map_err(|e| e.valid_up_to());
            assert_eq!(ours, std, "{s:?}");
        }
        // Long runs, with the bad byte past the first SIMD block.
        let mut long = vec![b'a'; 200];
        assert!(super::text(&long).is_ok());
        long[150] = 0x80;
        assert_eq!(super::text(&long).map_err(|e| e.valid_up_to()), Err(150));
    }
}
