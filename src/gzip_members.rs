//! gzip members that say their own compressed size, so a reader can find
//! where each one ends without inflating it, and inflate several at once.
//!
//! The size sits in the header's extra field (RFC 1952, FEXTRA), which
//! every gzip reader steps over: BGZF's `BC` subfield (2 bytes, the
//! member's size less one; what bgzip and samtools write), or the `PC`
//! subfield pipeline-cli writes in each member of its `.gz` output (4
//! bytes, little-endian: the member's size, header and trailer included).

/// The extra field pipeline-cli writes in a member's header: the `PC`
/// subfield with a size of 0, filled in by [`set_size`] once the member
/// is complete.
pub const SIZE_FIELD: [u8; 8] = [b'P', b'C', 4, 0, 0, 0, 0, 0];

/// Where [`SIZE_FIELD`]'s size lies in a member whose header holds only
/// it: after the fixed header (10 bytes), XLEN (2) and the subfield's id
/// and length (4).
const SIZE_AT: usize = 16;

/// Writes the size of `member` (a whole gzip member whose header's extra
/// field is [`SIZE_FIELD`] and nothing else) into its header. A member of
/// 4 GiB or more keeps a size of 0, which a reader takes as unknown.
pub fn set_size(member: &mut [u8]) {
    let fixed = member.len() > SIZE_AT + 4
        && member[3] & FEXTRA != 0
        && member[10..12] == [8, 0]
        && member[12..16] == SIZE_FIELD[..4];
    if let (true, Ok(size)) = (fixed, u32::try_from(member.len())) {
        member[SIZE_AT..SIZE_AT + 4].copy_from_slice(&size.to_le_bytes());
    }
}

/// The FEXTRA flag of a gzip header.
const FEXTRA: u8 = 4;

/// The compressed size of the gzip member that starts with `header` (its
/// first bytes, at least up to the end of its extra field), when its extra
/// field says it. `None`: not a gzip header, no size in it, or a size of 0.
pub fn member_size(header: &[u8]) -> Option<u64> {
    if header.len() < 12 || header[..3] != [0x1f, 0x8b, 8] || header[3] & FEXTRA == 0 {
        return None;
    }
    let xlen = usize::from(u16::from_le_bytes([header[10], header[11]]));
    let mut extra = header.get(12..12 + xlen)?;
    while extra.len() >= 4 {
        let len = usize::from(u16::from_le_bytes([extra[2], extra[3]]));
        let data = extra.get(4..4 + len)?;
        match (&extra[..2], len) {
            (b"BC", 2) => return Some(u64::from(u16::from_le_bytes([data[0], data[1]])) + 1),
            (b"PC", 4) => {
                let size = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                return (size > 0).then_some(u64::from(size));
            }
            _ => extra = &extra[4 + len..],
        }
    }
    None
}

/// A gzip member of `data` that says its size, as pipeline-cli writes them.
#[cfg(test)]
pub(crate) fn sized_member(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::GzBuilder::new()
        .extra(SIZE_FIELD.to_vec())
        .write(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data).unwrap();
    let mut member = enc.finish().unwrap();
    set_size(&mut member);
    member
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_written_member_says_its_size_and_stays_a_gzip_member() {
        for data in [&b""[..], b"a,b\n1,2\n", &[b'x'; 100_000]] {
            let member = sized_member(data);
            assert_eq!(member_size(&member), Some(member.len() as u64));
            assert_eq!(member_size(&member[..20]), Some(member.len() as u64));
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&member[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
    }

    #[test]
    fn bgzf_sizes_other_subfields_and_plain_headers() {
        // bgzip's end-of-file marker: an empty member of 28 bytes.
        let eof = b"\x1f\x8b\x08\x04\0\0\0\0\0\xff\x06\0BC\x02\0\x1b\0\x03\0\0\0\0\0\0\0\0\0";
        assert_eq!(member_size(eof), Some(28));
        // A subfield before the size is stepped over.
        let mut other = b"\x1f\x8b\x08\x04\0\0\0\0\0\xff\x0b\0XY\x01\0zBC\x02\0\x09\x01".to_vec();
        other.extend([0; 8]);
        assert_eq!(member_size(&other), Some(0x10a));
        // gzip(1)'s header: no extra field.
        let plain = b"\x1f\x8b\x08\x08\0\0\0\0\0\x03name\0";
        assert_eq!(member_size(plain), None);
        // Cut inside the extra field, a size of 0, not gzip at all.
        assert_eq!(member_size(&eof[..15]), None);
        let mut unknown = sized_member(b"abc");
        unknown[SIZE_AT..SIZE_AT + 4].fill(0);
        assert_eq!(member_size(&unknown), None);
        assert_eq!(member_size(b"id,name,note\n1,2,3\n"), None);
    }
}
