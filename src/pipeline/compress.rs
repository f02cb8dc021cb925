//! Pre-compressed variants (`.gz`, `.br`) of published files.
//!
//! Output must be a pure function of the input: the variants are uploaded
//! once under keys derived from the original's hash, their sizes are cached
//! in the state DB, and a second run on another machine has to agree. So a
//! large file is split into pieces of a fixed size, never by the number of
//! cores: the pieces are compressed in parallel and joined into one brotli
//! stream, the same bytes on every machine.

use std::io::Write;

use rayon::prelude::*;

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

    /// The name under which the size of this encoding of `len` bytes is
    /// cached: a file brotli compresses in pieces has other bytes than the
    /// one stream an earlier version made of it, so its size is another
    /// entry.
    pub fn cache_name(self, len: u64) -> &'static str {
        match self {
            Encoding::Br if len > BROTLI_PIECE as u64 => "br-pieces-1m",
            e => e.name(),
        }
    }
}

const GZIP_LEVEL: u32 = 9;
const BROTLI_QUALITY: i32 = 11;
const BROTLI_LGWIN: i32 = 22;
/// Brotli at quality 11 runs at about 0.5 MB/s a core: a file larger than
/// this is compressed in pieces of this size, in parallel. Each piece after
/// the first loses what it could have taken from the ones before it (about
/// 3% more bytes for minified CSS) and the pieces' compression runs on
/// every core (a 5 MB stylesheet: 4.9 s instead of 11.9 s on 2 cores).
const BROTLI_PIECE: usize = 1 << 20;

/// gzip level 9 with a zero mtime and no file name in the header, brotli
/// quality 11 with a 4 MiB window (in 1 MiB pieces above 1 MiB).
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

/// Above this size `plan` estimates a file's brotli size (see
/// [`estimated_size`]) rather than wait for it: the size from which brotli
/// compresses in pieces, about 2 s a piece on one core.
pub const ESTIMATE_ABOVE: u64 = BROTLI_PIECE as u64;

/// How much of a file [`estimated_size`] compresses.
const ESTIMATE_SAMPLE: usize = 256 * 1024;

/// What [`compress_if_worthwhile`] would make of `data`, in bytes, estimated
/// from its first 256 KiB compressed the same way and scaled to the whole
/// (`None`: not worth it, by the same rule). A fraction of the work for a
/// large file, and a guess: a file whose start compresses better or worse
/// than the rest is estimated low or high.
pub fn estimated_size(data: &[u8], encoding: Encoding) -> Option<u64> {
    if data.len() <= ESTIMATE_SAMPLE {
        return compress_if_worthwhile(data, encoding).map(|c| c.len() as u64);
    }
    let sample = &data[..ESTIMATE_SAMPLE];
    let compressed = compress(sample, encoding).len() as u128;
    let len = data.len() as u128;
    let estimate = (compressed * len).div_ceil(ESTIMATE_SAMPLE as u128);
    (estimate * 100 < len * 95).then_some(estimate as u64)
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
    if data.len() <= BROTLI_PIECE {
        return brotli_stream(data, Piece::Whole);
    }
    let pieces: Vec<Vec<u8>> = data
        .par_chunks(BROTLI_PIECE)
        .enumerate()
        .map(|(i, piece)| brotli_stream(piece, if i == 0 { Piece::First } else { Piece::Later }))
        .collect();
    join_brotli(&pieces)
}

/// Which part of the output a brotli stream is.
#[derive(Clone, Copy, PartialEq)]
enum Piece {
    Whole,
    /// Leaves the stream open for more to be appended.
    First,
    /// Also without the stream header and the static dictionary, whose
    /// references would point elsewhere once joined ("catable").
    Later,
}

fn brotli_stream(data: &[u8], piece: Piece) -> Vec<u8> {
    let mut params = brotli::enc::BrotliEncoderParams {
        quality: BROTLI_QUALITY,
        lgwin: BROTLI_LGWIN,
        size_hint: data.len(),
        ..Default::default()
    };
    match piece {
        Piece::Whole => {}
        Piece::First => params.appendable = true,
        Piece::Later => {
            params.catable = true;
            params.magic_number = false;
        }
    }
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let mut input = data;
    // Reading from a slice and writing into a Vec cannot fail.
    brotli::BrotliCompress(&mut input, &mut out, &params).expect("brotli into memory");
    out
}

/// One brotli stream of the pieces' streams, in order: each piece's end
/// marker is dropped and the next one's header spliced on.
fn join_brotli(pieces: &[Vec<u8>]) -> Vec<u8> {
    use brotli::concat::{BroCatli, BroCatliResult};
    // The joined stream is never longer than its pieces together.
    let mut out = vec![0u8; pieces.iter().map(Vec::len).sum::<usize>() + 16];
    let mut len = 0;
    let mut cat = BroCatli::new();
    for piece in pieces {
        cat.new_brotli_file();
        let r = cat.stream(piece, &mut 0, &mut out, &mut len);
        assert!(
            matches!(r, BroCatliResult::Success | BroCatliResult::NeedsMoreInput),
            "joining brotli pieces made for it: {r:?}"
        );
    }
    let r = cat.finish(&mut out, &mut len);
    assert!(matches!(r, BroCatliResult::Success), "{r:?}");
    out.truncate(len);
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

    /// Minified CSS of `len` bytes, varied enough that brotli takes its
    /// time and leaves something to compare.
    fn stylesheet(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut out = Vec::with_capacity(len + 200);
        let mut i = 0;
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            i += 1;
            out.extend_from_slice(
                format!(
                    ".c{i}{{margin:{}px;color:#{:06x};background:url(../img/i{}.png)}}",
                    x % 40,
                    (x >> 8) & 0xff_ffff,
                    (x >> 32) % 20_000
                )
                .as_bytes(),
            );
        }
        out.truncate(len);
        out
    }

    #[test]
    fn a_large_file_is_one_brotli_stream_of_pieces() {
        // Over two pieces and a part: the joins and a short last piece.
        let data = stylesheet(2 * BROTLI_PIECE + 12_345);
        let br = compress(&data, Encoding::Br);
        assert_eq!(decompress(&br, Encoding::Br), data);
        // Pieces, not one stream: that stream would be another size.
        assert_ne!(br.len(), brotli_stream(&data, Piece::Whole).len());
        assert!(br.len() * 5 < data.len(), "{} of {}", br.len(), data.len());
        // And on the edge, exactly one piece is one whole stream.
        let one = stylesheet(BROTLI_PIECE);
        assert_eq!(
            compress(&one, Encoding::Br),
            brotli_stream(&one, Piece::Whole)
        );
    }

    #[test]
    fn pieces_do_not_depend_on_the_number_of_cores() {
        let data = stylesheet(BROTLI_PIECE * 3 / 2);
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| compress(&data, Encoding::Br))
        };
        assert_eq!(on(1), on(3));
    }

    #[test]
    fn the_cache_tells_pieces_from_one_stream() {
        let piece = BROTLI_PIECE as u64;
        assert_eq!(Encoding::Br.cache_name(piece), "br");
        assert_ne!(Encoding::Br.cache_name(piece + 1), "br");
        assert_eq!(Encoding::Gzip.cache_name(piece + 1), "gzip");
    }

    #[test]
    fn an_estimate_is_near_the_size_and_follows_the_rule() {
        let data = stylesheet(3 * BROTLI_PIECE / 2);
        for e in ENCODINGS {
            let exact = compress(&data, e).len() as f64;
            let estimate = estimated_size(&data, e).expect("worth it") as f64;
            assert!(
                (estimate / exact - 1.0).abs() < 0.15,
                "{e:?}: {estimate} for {exact}"
            );
        }
        assert_eq!(
            estimated_size(&noise(ESTIMATE_SAMPLE * 2), Encoding::Br),
            None
        );
        // Small enough to be the sample: the size itself.
        let small = text();
        assert_eq!(
            estimated_size(&small, Encoding::Br),
            Some(compress(&small, Encoding::Br).len() as u64)
        );
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
