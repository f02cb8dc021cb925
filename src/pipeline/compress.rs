//! Pre-compressed variants (`.gz`, `.br`) of published files.
//!
//! Output must be a pure function of the input: the variants are uploaded
//! once under keys derived from the original's hash, their sizes are cached
//! in the state DB, and a second run on another machine has to agree.

use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Gzip,
    Br,
}

impl Encoding {
    /// The `Content-Encoding` token.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Br => "br",
        }
    }
}

const GZIP_LEVEL: u32 = 9;
const BROTLI_QUALITY: i32 = 11;
const BROTLI_LGWIN: i32 = 22;

/// gzip level 9 with a zero mtime and no file name in the header, brotli
/// quality 11 with a 4 MiB window.
pub fn compress(data: &[u8], encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Gzip => gzip(data),
        Encoding::Br => brotli(data),
    }
}

/// The compressed bytes when they save at least 5% (WhiteNoise's rule: below
/// that, the cost of a second object and of decoding outweighs the bytes).
pub fn compress_if_worthwhile(data: &[u8], encoding: Encoding) -> Option<Vec<u8>> {
    let compressed = compress(data, encoding);
    // compressed < 0.95 * len, in integers so that no length rounds its way in.
    (compressed.len() as u128 * 100 < data.len() as u128 * 95).then_some(compressed)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    // The builder's defaults already zero the mtime, leave out the name and
    // write "unknown" for the OS; reproducibility rests on them, so the two
    // that a default could change are pinned here.
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(
            Vec::with_capacity(data.len() / 2 + 64),
            flate2::Compression::new(GZIP_LEVEL),
        );
    // Writing into a Vec cannot fail.
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let params = brotli::enc::BrotliEncoderParams {
        quality: BROTLI_QUALITY,
        lgwin: BROTLI_LGWIN,
        size_hint: data.len(),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let mut input = data;
    // Reading from a slice and writing into a Vec cannot fail.
    brotli::BrotliCompress(&mut input, &mut out, &params).expect("brotli into memory");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const ENCODINGS: [Encoding; 2] = [Encoding::Gzip, Encoding::Br];

    fn decompress(data: &[u8], encoding: Encoding) -> Vec<u8> {
        let mut out = Vec::new();
        match encoding {
            Encoding::Gzip => flate2::read::GzDecoder::new(data).read_to_end(&mut out),
            Encoding::Br => brotli::Decompressor::new(data, 4096).read_to_end(&mut out),
        }
        .unwrap();
        out
    }

    fn text() -> Vec<u8> {
        ".card { margin: 0 auto; padding: 1rem; background: url(../img/hero.jpg) center / cover; }\n"
            .repeat(200)
            .into_bytes()
    }

    /// A fixed xorshift stream: incompressible, and the same on every run.
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn names_and_extensions() {
        assert_eq!(Encoding::Gzip.name(), "gzip");
        assert_eq!(Encoding::Br.name(), "br");
    }

    #[test]
    fn round_trip() {
        for data in [text(), noise(10_000), Vec::new(), b"x".to_vec()] {
            for e in ENCODINGS {
                assert_eq!(
                    decompress(&compress(&data, e), e),
                    data,
                    "{e:?}, {} bytes",
                    data.len()
                );
            }
        }
    }

    #[test]
    fn deterministic() {
        let data = text();
        for e in ENCODINGS {
            assert_eq!(compress(&data, e), compress(&data, e), "{e:?}");
        }
    }

    #[test]
    fn gzip_header_has_no_time_or_name() {
        let gz = compress(b"hello", Encoding::Gzip);
        assert_eq!(&gz[..3], &[0x1f, 0x8b, 8], "magic and deflate");
        assert_eq!(gz[3] & 0x08, 0, "FNAME flag set");
        assert_eq!(&gz[4..8], &[0, 0, 0, 0], "mtime not zero");
    }

    #[test]
    fn incompressible_data_is_not_worth_it() {
        let data = noise(20_000);
        for e in ENCODINGS {
            assert_eq!(compress_if_worthwhile(&data, e), None, "{e:?}");
        }
    }

    #[test]
    fn repetitive_text_is_worth_it() {
        let data = text();
        for e in ENCODINGS {
            let c = compress_if_worthwhile(&data, e).expect("text compresses");
            assert!(
                c.len() * 10 < data.len(),
                "{e:?}: {} of {}",
                c.len(),
                data.len()
            );
            assert_eq!(decompress(&c, e), data);
        }
    }

    #[test]
    fn tiny_files_are_not_worth_it() {
        // The container headers alone outweigh any saving.
        for e in ENCODINGS {
            assert_eq!(compress_if_worthwhile(b"", e), None, "{e:?}");
            assert_eq!(compress_if_worthwhile(b"ok", e), None, "{e:?}");
        }
    }
}
