//! Content types by file extension, and which of them are worth compressing.
//!
//! A fixed table rather than the platform's mime database: the same build
//! must publish the same headers from any machine, and a CDN origin serves a
//! small, well-known set of web formats.

/// The extension after the last dot of the file name, lowercased. A leading
/// dot alone (`.htaccess`) is a hidden file's name, not an extension. The
/// one place a file name's extension is parsed: content types, the
/// rewriters' syntax and `allowed_extensions` all ask here.
pub fn extension(logical: &str) -> Option<String> {
    let name = logical.rsplit('/').next().unwrap_or(logical);
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => Some(ext.to_ascii_lowercase()),
        _ => None,
    }
}

fn bare_type(ext: &str) -> &'static str {
    match ext {
        // Documents and text
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" | "cjs" => "text/javascript",
        "json" => "application/json",
        // Source maps are JSON; browsers' dev tools accept either type.
        "map" => "application/json",
        "jsonld" => "application/ld+json",
        "webmanifest" => "application/manifest+json",
        "xml" => "application/xml",
        "rss" => "application/rss+xml",
        "atom" => "application/atom+xml",
        "xsl" | "xslt" => "application/xslt+xml",
        "txt" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "ics" => "text/calendar",
        "vtt" => "text/vtt",
        "yaml" | "yml" => "application/yaml",
        "toml" => "application/toml",
        "appcache" => "text/cache-manifest",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        // Images
        "svg" => "image/svg+xml",
        "png" | "apng" => "image/png",
        "jpg" | "jpeg" | "jpe" | "jfif" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "jxl" => "image/jxl",
        "heic" => "image/heic",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        // `image/vnd.microsoft.icon` is the registered name, but this is the
        // one every browser and CDN default recognises.
        "ico" | "cur" => "image/x-icon",
        // Fonts
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "eot" => "application/vnd.ms-fontobject",
        // Audio and video
        "mp3" => "audio/mpeg",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "m4a" => "audio/mp4",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "ogv" => "video/ogg",
        "mov" => "video/quicktime",
        // Archives and binaries
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "br" => "application/x-brotli",
        "zst" => "application/zstd",
        "bz2" => "application/x-bzip2",
        "xz" => "application/x-xz",
        "7z" => "application/x-7z-compressed",
        "tar" => "application/x-tar",
        _ => "application/octet-stream",
    }
}

/// Types a browser decodes as text, so that the charset parameter applies.
fn is_text(bare: &str) -> bool {
    bare.starts_with("text/")
        || bare.ends_with("+json")
        || bare.ends_with("+xml")
        || matches!(
            bare,
            "application/json" | "application/xml" | "application/yaml" | "application/toml"
        )
}

/// Content-Type for a logical path by extension (case-insensitive), with
/// `; charset=utf-8` for text types.
pub fn content_type(logical: &str) -> String {
    let bare = extension(logical).map_or("application/octet-stream", |ext| bare_type(&ext));
    if is_text(bare) {
        format!("{bare}; charset=utf-8")
    } else {
        bare.to_string()
    }
}

/// Whether the type is worth compressing. False for formats that carry their
/// own compression (PDF included: its streams are deflated already), where
/// gzip or brotli would spend CPU to save nothing, and for unknown types.
pub fn is_compressible(logical: &str) -> bool {
    let Some(ext) = extension(logical) else {
        return false;
    };
    let bare = bare_type(&ext);
    if is_text(bare) {
        return true;
    }
    matches!(
        bare,
        "application/wasm"
            | "image/x-icon"
            | "image/bmp"
            | "image/tiff"
            | "font/ttf"
            | "font/otf"
            | "application/vnd.ms-fontobject"
            | "audio/wav"
            | "application/x-tar"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_types() {
        let cases = [
            ("index.html", "text/html; charset=utf-8"),
            ("old/page.htm", "text/html; charset=utf-8"),
            ("css/site.css", "text/css; charset=utf-8"),
            ("js/app.js", "text/javascript; charset=utf-8"),
            ("js/mod.mjs", "text/javascript; charset=utf-8"),
            ("js/lib.cjs", "text/javascript; charset=utf-8"),
            ("data.json", "application/json; charset=utf-8"),
            ("js/app.js.map", "application/json; charset=utf-8"),
            (
                "site.webmanifest",
                "application/manifest+json; charset=utf-8",
            ),
            ("sitemap.xml", "application/xml; charset=utf-8"),
            ("feed.rss", "application/rss+xml; charset=utf-8"),
            ("robots.txt", "text/plain; charset=utf-8"),
            ("README.md", "text/markdown; charset=utf-8"),
            ("data.csv", "text/csv; charset=utf-8"),
            ("img/icons.svg", "image/svg+xml; charset=utf-8"),
            ("app.wasm", "application/wasm"),
            ("fonts/inter.woff", "font/woff"),
            ("fonts/inter.woff2", "font/woff2"),
            ("fonts/a.ttf", "font/ttf"),
            ("fonts/a.otf", "font/otf"),
            ("fonts/a.eot", "application/vnd.ms-fontobject"),
            ("favicon.ico", "image/x-icon"),
            ("img/logo.png", "image/png"),
            ("img/hero.jpg", "image/jpeg"),
            ("img/hero.jpeg", "image/jpeg"),
            ("img/a.gif", "image/gif"),
            ("img/photo.webp", "image/webp"),
            ("img/a.avif", "image/avif"),
            ("doc.pdf", "application/pdf"),
            ("v.mp4", "video/mp4"),
            ("v.webm", "video/webm"),
            ("a.mp3", "audio/mpeg"),
            ("a.ogg", "audio/ogg"),
            ("a.wav", "audio/wav"),
            ("dl.zip", "application/zip"),
            ("dl.tar.gz", "application/gzip"),
            ("app.js.br", "application/x-brotli"),
        ];
        for (path, want) in cases {
            assert_eq!(content_type(path), want, "{path}");
        }
    }

    #[test]
    fn extension_is_case_insensitive() {
        assert_eq!(content_type("IMG/HERO.JPG"), "image/jpeg");
        assert_eq!(content_type("Index.HTML"), "text/html; charset=utf-8");
        assert!(is_compressible("STYLE.CSS"));
        assert!(!is_compressible("PHOTO.WEBP"));
    }

    #[test]
    fn unknown_or_missing_extension_is_octet_stream() {
        for path in [
            "LICENSE",
            "bin/tool.xyz",
            ".htaccess",
            "dir.v2/file",
            "trailing.",
            "",
        ] {
            assert_eq!(content_type(path), "application/octet-stream", "{path:?}");
            assert!(!is_compressible(path), "{path:?}");
        }
    }

    #[test]
    fn only_the_file_name_is_looked_at() {
        assert_eq!(content_type("assets.css/logo"), "application/octet-stream");
        assert_eq!(content_type("a.b/c.d/style.css"), "text/css; charset=utf-8");
    }

    #[test]
    fn text_and_uncompressed_binaries_are_compressible() {
        for path in [
            "a.html",
            "a.css",
            "a.js",
            "a.mjs",
            "a.json",
            "a.map",
            "a.svg",
            "a.xml",
            "a.txt",
            "a.wasm",
            "site.webmanifest",
            "favicon.ico",
            "a.ttf",
            "a.otf",
            "a.eot",
            "a.csv",
            "a.md",
        ] {
            assert!(is_compressible(path), "{path}");
        }
    }

    #[test]
    fn compressed_formats_are_not() {
        for path in [
            "a.png", "a.jpg", "a.jpeg", "a.gif", "a.webp", "a.avif", "a.woff", "a.woff2", "a.zip",
            "a.gz", "a.br", "a.mp3", "a.mp4", "a.webm", "a.ogg", "a.pdf", "a.bin",
        ] {
            assert!(!is_compressible(path), "{path}");
        }
    }
}
