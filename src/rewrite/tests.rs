//! Tests of every scanner, through the public entry points.

use super::*;

const HASH: &str = "3f2a9c1b7d4e";

/// The fingerprinted file name of a logical path, and the identity for a
/// name that already carries the hash, as the caller's lookup behaves.
fn fingerprinted(target: &str) -> Option<String> {
    let name = target.rsplit('/').next().unwrap_or(target);
    if name.contains(HASH) {
        return Some(name.to_string());
    }
    Some(match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.{HASH}.{ext}"),
        _ => format!("{name}.{HASH}"),
    })
}

/// (url as written, target, suffix) of each reference found.
fn found(
    syntax: Syntax,
    referrer: &str,
    text: &str,
    js_imports: bool,
) -> Vec<(String, String, String)> {
    find_references(syntax, referrer, text, js_imports)
        .into_iter()
        .map(|r| {
            assert_eq!(
                text.get(r.range.clone()),
                Some(r.url.as_str()),
                "range matches url"
            );
            (r.url, r.target, r.suffix)
        })
        .collect()
}

fn triple(url: &str, target: &str, suffix: &str) -> (String, String, String) {
    (url.to_string(), target.to_string(), suffix.to_string())
}

fn css(text: &str) -> Vec<(String, String, String)> {
    found(Syntax::Css, "css/app.css", text, false)
}

fn targets(syntax: Syntax, referrer: &str, text: &str, js_imports: bool) -> Vec<String> {
    found(syntax, referrer, text, js_imports)
        .into_iter()
        .map(|(_, t, _)| t)
        .collect()
}

fn rewritten(syntax: Syntax, referrer: &str, text: &str, js_imports: bool) -> String {
    let refs = find_references(syntax, referrer, text, js_imports);
    rewrite(text, &refs, fingerprinted)
}

fn rewritten_css(text: &str) -> String {
    rewritten(Syntax::Css, "css/app.css", text, false)
}

#[test]
fn syntax_follows_the_extension() {
    assert_eq!(Syntax::for_path("css/app.css"), Syntax::Css);
    assert_eq!(Syntax::for_path("APP.CSS"), Syntax::Css);
    assert_eq!(Syntax::for_path("js/app.js"), Syntax::Js);
    assert_eq!(Syntax::for_path("js/app.mjs"), Syntax::Js);
    assert_eq!(Syntax::for_path("js/app.cjs"), Syntax::Js);
    assert_eq!(Syntax::for_path("js/app.js.map"), Syntax::SourceMap);
    assert_eq!(Syntax::for_path("css.d/readme"), Syntax::Other);
    assert_eq!(Syntax::for_path("index.html"), Syntax::Html);
    assert_eq!(Syntax::for_path("blog/Old.HTM"), Syntax::Html);
    assert_eq!(Syntax::for_path("img/logo.png"), Syntax::Other);
    assert_eq!(Syntax::for_path("site.webmanifest"), Syntax::WebManifest);
    assert_eq!(Syntax::for_path(""), Syntax::Other);
}

fn html(text: &str) -> Vec<String> {
    targets(Syntax::Html, "blog/post.html", text, false)
}

#[test]
fn html_url_attributes_in_every_quoting_style() {
    let text = "<link rel=stylesheet href=\"../css/site.css\">\n<script src='/js/app.js' defer></script>\n<IMG SRC=../img/a.png alt=x><video poster=v.jpg></video><object data=doc.svg></object>";
    assert_eq!(
        html(text),
        [
            "css/site.css",
            "js/app.js",
            "img/a.png",
            "blog/v.jpg",
            "blog/doc.svg"
        ]
    );
    assert_eq!(
        rewritten(Syntax::Html, "blog/post.html", text, false),
        format!(
            "<link rel=stylesheet href=\"../css/site.{HASH}.css\">\n<script src='/js/app.{HASH}.js' defer></script>\n<IMG SRC=../img/a.{HASH}.png alt=x><video poster=v.{HASH}.jpg></video><object data=doc.{HASH}.svg></object>"
        )
    );
}

#[test]
fn html_links_svg_uses_and_fragments() {
    let text = "<a href=\"../about.html#team\">a</a> <a href=\"#top\">t</a> <a href=\"mailto:x@y.z\">m</a> <a href=\"https://x.org/a.png\">x</a> <a href=\"../\">up</a>\n<svg><use href=\"../img/icons.svg#arrow\"></use><use xlink:href=\"../img/icons.svg#star\"/></svg>";
    assert_eq!(
        found(Syntax::Html, "blog/post.html", text, false),
        [
            triple("../about.html#team", "about.html", "#team"),
            triple("../img/icons.svg#arrow", "img/icons.svg", "#arrow"),
            triple("../img/icons.svg#star", "img/icons.svg", "#star"),
        ]
    );
}

#[test]
fn html_srcset_candidates_each_rewritten() {
    let text = "<img srcset=\"a.png 1x, b%20c.png 2x,d.png\" src=a.png><link rel=preload as=image imagesrcset=\"e.png 480w,  f.png 800w\">";
    assert_eq!(
        html(text),
        [
            "blog/a.png",
            "blog/b c.png",
            "blog/d.png",
            "blog/a.png",
            "blog/e.png",
            "blog/f.png"
        ]
    );
    assert_eq!(
        rewritten(Syntax::Html, "blog/post.html", text, false),
        format!(
            "<img srcset=\"a.{HASH}.png 1x, b%20c.{HASH}.png 2x,d.{HASH}.png\" src=a.{HASH}.png><link rel=preload as=image imagesrcset=\"e.{HASH}.png 480w,  f.{HASH}.png 800w\">"
        )
    );
}

#[test]
fn html_inline_css_in_style_elements_and_attributes() {
    let text = "<style>\n.hero { background: url(../img/hero.jpg) }\n@import 'x.css';\n</STYLE><div style=\"background-image: url('../img/a.png')\"></div><p style=\"background:url(&quot;b.png&quot;)\"></p>";
    assert_eq!(html(text), ["img/hero.jpg", "blog/x.css", "img/a.png"]);
}

#[test]
fn html_text_comments_scripts_and_other_attributes_are_not_references() {
    let text = "<p>A page pointing at <code>../img/hero.jpg</code> or src=a.png</p>\n<!-- <img src=old.png> -->\n<script>document.write('<img src=\"x.png\">')</script>\n<textarea><img src=t.png></textarea><title>src=y.png</title>\n<img data-src=lazy.png alt=\"src=z.png\" src=\"  real.png  \">\n<a href=\"a&amp;b.html\">e</a><a href=\"q.html?a=1&amp;b=2\">q</a>";
    assert_eq!(html(text), ["blog/real.png", "blog/q.html"]);
    let once = rewritten(Syntax::Html, "blog/post.html", text, false);
    assert_eq!(
        once,
        text.replace("real.png", &format!("real.{HASH}.png"))
            .replace("q.html", &format!("q.{HASH}.html"))
    );
}

#[test]
fn html_with_a_base_element_is_left_alone() {
    let text = "<head><base href=\"https://cdn.example.org/\"><link href=css/site.css rel=stylesheet></head>";
    assert_eq!(html(text), Vec::<String>::new());
    // `<base target>` changes no URL.
    assert_eq!(html("<base target=_blank><img src=a.png>"), ["blog/a.png"]);
}

#[test]
fn html_unclosed_constructs_end_the_scan_without_panicking() {
    for text in [
        "<img src=\"a.png",
        "<img src=",
        "<!-- <img src=a.png>",
        "<script><img src=a.png>",
        "<",
        "<a",
        "<a href",
    ] {
        assert_eq!(html(text), Vec::<String>::new(), "{text:?}");
    }
    // A tag cut off by the end of the file is no tag, as browsers parse it.
    assert_eq!(html("<img src=a.png"), Vec::<String>::new());
}

#[test]
fn web_manifest_icon_sources_at_any_depth() {
    let text = r#"{"name": "src", "start_url": "/index.html",
  "icons": [{ "src": "/img/logo.png", "sizes": "192x192" }, {"src":"icons/a%20b.png?v=2"}],
  "shortcuts": [{"name": "x", "icons": [{"src": "../up.png"}]}],
  "screenshots": [{"src": "s\\u0031.png"}, {"src": 3}], "description": "src"}"#;
    assert_eq!(
        found(Syntax::WebManifest, "app/site.webmanifest", text, false),
        [
            triple("/img/logo.png", "img/logo.png", ""),
            triple("icons/a%20b.png?v=2", "app/icons/a b.png", "?v=2"),
            triple("../up.png", "up.png", ""),
        ]
    );
}

#[test]
fn css_url_in_every_quoting_style() {
    let text = "a{b:url(a.png)}\nb{b:url('b.png')}\nc{b:url(\"c.png\")}";
    assert_eq!(
        css(text),
        vec![
            triple("a.png", "css/a.png", ""),
            triple("b.png", "css/b.png", ""),
            triple("c.png", "css/c.png", ""),
        ]
    );
    assert_eq!(
        rewritten_css(text),
        "a{b:url(a.3f2a9c1b7d4e.png)}\nb{b:url('b.3f2a9c1b7d4e.png')}\nc{b:url(\"c.3f2a9c1b7d4e.png\")}"
    );
}

#[test]
fn whitespace_inside_url_parens_and_quotes_is_kept() {
    let text = "a{b:url(  a.png\t)} b{b:url( ' b.png ' )} c{b:url(\n\"c.png\"\n)}";
    assert_eq!(
        targets(Syntax::Css, "app.css", text, false),
        ["a.png", "b.png", "c.png"]
    );
    assert_eq!(
        rewritten(Syntax::Css, "app.css", text, false),
        "a{b:url(  a.3f2a9c1b7d4e.png\t)} b{b:url( ' b.3f2a9c1b7d4e.png ' )} c{b:url(\n\"c.3f2a9c1b7d4e.png\"\n)}"
    );
}

#[test]
fn several_urls_on_one_line_and_upper_case_url() {
    let text = "x{background:url(a.png),URL(b.png), Url( \"c.png\" )}";
    assert_eq!(
        targets(Syntax::Css, "app.css", text, false),
        ["a.png", "b.png", "c.png"]
    );
}

#[test]
fn font_face_src_list_keeps_format_query_and_fragment() {
    let text = "@font-face{font-family:X;\
        src:url('../fonts/x.eot?#iefix') format('embedded-opentype'),\
        url(\"../fonts/x.woff2?v=1\") format(\"woff2\"),\
        url(../fonts/x.svg#xregular) format('svg'),\
        local('X'), url(../fonts/x.ttf?a=1#b) format(\"truetype\")}";
    assert_eq!(
        css(text),
        vec![
            triple("../fonts/x.eot?#iefix", "fonts/x.eot", "?#iefix"),
            triple("../fonts/x.woff2?v=1", "fonts/x.woff2", "?v=1"),
            triple("../fonts/x.svg#xregular", "fonts/x.svg", "#xregular"),
            triple("../fonts/x.ttf?a=1#b", "fonts/x.ttf", "?a=1#b"),
        ]
    );
    let out = rewritten_css(text);
    assert!(
        out.contains("url('../fonts/x.3f2a9c1b7d4e.eot?#iefix') format('embedded-opentype')"),
        "{out}"
    );
    assert!(
        out.contains("url(\"../fonts/x.3f2a9c1b7d4e.woff2?v=1\") format(\"woff2\")"),
        "{out}"
    );
    assert!(
        out.contains("url(../fonts/x.3f2a9c1b7d4e.svg#xregular) format('svg')"),
        "{out}"
    );
    assert!(
        out.contains("url(../fonts/x.3f2a9c1b7d4e.ttf?a=1#b)"),
        "{out}"
    );
    assert!(out.contains("local('X')"));
}

#[test]
fn non_file_urls_are_left_alone() {
    let text = "a{b:url(data:image/png;base64,iVBORw0KGgo=)}\
        b{b:url('data:image/svg+xml;utf8,<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>')}\
        c{b:url(https://cdn.example.com/a.png)} d{b:url(//cdn.example.com/a.png)}\
        e{filter:url(#shadow)} f{b:url(mailto:x@example.com)} g{b:url()} h{b:url('')}\
        i{b:url(?v=1)} j{b:url(img/)} k{b:url(.)} l{b:url(..)} m{b:url(a\\).png)}\
        n{b:url(HTTP://x/a.png)} o{b:url(a//b.png)}";
    assert_eq!(css(text), vec![]);
    assert_eq!(rewritten_css(text), text);
}

#[test]
fn comments_are_not_references_except_the_source_map_comment() {
    let text = "/* url(foo.png) @import \"x.css\"; */a{b:url(a.png)}/*url(bar.png)*/\n\
        /*# sourceMappingURL=app.css.map */";
    assert_eq!(
        targets(Syntax::Css, "css/app.css", text, false),
        ["css/a.png", "css/app.css.map"]
    );
    assert_eq!(
        rewritten_css(text),
        "/* url(foo.png) @import \"x.css\"; */a{b:url(a.3f2a9c1b7d4e.png)}/*url(bar.png)*/\n\
         /*# sourceMappingURL=app.css.3f2a9c1b7d4e.map */"
    );
}

#[test]
fn css_source_map_comment_forms() {
    assert_eq!(
        css("/*# sourceMappingURL=a.map*/"),
        vec![triple("a.map", "css/a.map", "")]
    );
    assert_eq!(
        css("/*@ sourceMappingURL=a.map */"),
        vec![triple("a.map", "css/a.map", "")]
    );
    assert_eq!(
        css("/*#sourceMappingURL=../maps/a.map */"),
        vec![triple("../maps/a.map", "maps/a.map", "")]
    );
    assert_eq!(css("/* sourceMappingURL=a.map */"), vec![]);
    assert_eq!(
        css("/*# sourceMappingURL=data:application/json;base64,e30= */"),
        vec![]
    );
    assert_eq!(css("/*# sourceMappingURL= */"), vec![]);
    assert_eq!(
        css("/*# sourceMappingURL=a.map"),
        vec![triple("a.map", "css/a.map", "")]
    );
}

#[test]
fn css_strings_are_not_references() {
    let text = "a:before{content:\"url(x.png)\"} b:after{content:'@import \"y.css\"'} c{content:\"\\\"url(z.png)\"}";
    assert_eq!(css(text), vec![]);
}

#[test]
fn an_escaped_quote_outside_strings_opens_no_string() {
    let text = ".it\\'s{background:url(a.png)} .q\\\"{b:url(b.png)}";
    assert_eq!(
        targets(Syntax::Css, "app.css", text, false),
        ["a.png", "b.png"]
    );
}

#[test]
fn url_needs_a_function_boundary() {
    assert_eq!(
        css("a{b:myurl(a.png); c:-x-url(b.png); d:image-set(url(c.png) 1x)}"),
        vec![triple("c.png", "css/c.png", "")]
    );
}

#[test]
fn import_rule_forms() {
    let text = "@import \"a.css\";\n@import 'b.css' screen;\n@import url(c.css);\n@import url( \"d.css\" ) print;\n\
        @IMPORT\t'e.css';\n@import url(https://fonts.example.com/css);\n@imports 'f.css';@import ' g.css ';";
    assert_eq!(
        targets(Syntax::Css, "css/app.css", text, false),
        [
            "css/a.css",
            "css/b.css",
            "css/c.css",
            "css/d.css",
            "css/e.css",
            "css/g.css"
        ]
    );
    assert_eq!(
        rewritten_css(text),
        "@import \"a.3f2a9c1b7d4e.css\";\n@import 'b.3f2a9c1b7d4e.css' screen;\n@import url(c.3f2a9c1b7d4e.css);\n\
         @import url( \"d.3f2a9c1b7d4e.css\" ) print;\n@IMPORT\t'e.3f2a9c1b7d4e.css';\n\
         @import url(https://fonts.example.com/css);\n@imports 'f.css';@import ' g.3f2a9c1b7d4e.css ';"
    );
}

#[test]
fn relative_paths_resolve_against_the_referrer() {
    let text = "a{b:url(../../img/x.png)} b{b:url(./y.png)} c{b:url(z/./../w.png)} d{b:url(../../../up.png)}";
    assert_eq!(
        found(Syntax::Css, "css/sub/a.css", text, false),
        vec![
            triple("../../img/x.png", "img/x.png", ""),
            triple("./y.png", "css/sub/y.png", ""),
            triple("z/./../w.png", "css/sub/w.png", ""),
        ]
    );
    assert_eq!(
        rewritten(Syntax::Css, "css/sub/a.css", text, false),
        "a{b:url(../../img/x.3f2a9c1b7d4e.png)} b{b:url(./y.3f2a9c1b7d4e.png)} \
         c{b:url(z/./../w.3f2a9c1b7d4e.png)} d{b:url(../../../up.png)}"
    );
}

#[test]
fn absolute_paths_resolve_against_the_root_and_keep_their_slash() {
    let text = "a{b:url(/img/a.png)} b{b:url('/b.png?x')}";
    assert_eq!(
        found(Syntax::Css, "css/sub/a.css", text, false),
        vec![
            triple("/img/a.png", "img/a.png", ""),
            triple("/b.png?x", "b.png", "?x")
        ]
    );
    assert_eq!(
        rewritten(Syntax::Css, "css/sub/a.css", text, false),
        "a{b:url(/img/a.3f2a9c1b7d4e.png)} b{b:url('/b.3f2a9c1b7d4e.png?x')}"
    );
    assert_eq!(css("a{b:url(/../a.png)}"), vec![]);
}

#[test]
fn unicode_names_work_as_written() {
    let text = "a{b:url(画像/ünï.png)} b{b:url(\"../é 1.png\")}";
    assert_eq!(
        targets(Syntax::Css, "css/app.css", text, false),
        ["css/画像/ünï.png", "é 1.png"]
    );
    assert_eq!(
        rewritten_css(text),
        "a{b:url(画像/ünï.3f2a9c1b7d4e.png)} b{b:url(\"../é 1.3f2a9c1b7d4e.png\")}"
    );
}

#[test]
fn percent_encoded_names_are_decoded_and_re_encoded_alike() {
    let cases = [
        ("my%20file.png", "my file.png", "my%20file.3f2a9c1b7d4e.png"),
        ("caf%C3%A9.png", "café.png", "caf%C3%A9.3f2a9c1b7d4e.png"),
        (
            "caf%c3%a9%28x%29.png",
            "café(x).png",
            "caf%c3%a9%28x%29.3f2a9c1b7d4e.png",
        ),
        (
            "caf\u{e9}%20x.png",
            "café x.png",
            "caf\u{e9}%20x.3f2a9c1b7d4e.png",
        ),
        ("a%2Bb.png", "a+b.png", "a%2Bb.3f2a9c1b7d4e.png"),
        ("100%.png", "100%.png", "100%25.3f2a9c1b7d4e.png"),
    ];
    for (url, target, new_url) in cases {
        let text = format!("a{{b:url('{url}')}}");
        assert_eq!(
            targets(Syntax::Css, "app.css", &text, false),
            [target],
            "{url}"
        );
        let out = rewritten(Syntax::Css, "app.css", &text, false);
        assert_eq!(out, format!("a{{b:url('{new_url}')}}"));
        assert_eq!(
            rewritten(Syntax::Css, "app.css", &out, false),
            out,
            "a second rewrite changes nothing"
        );
    }
    // An encoded slash is no separator, and bytes that are not UTF-8 name no logical path.
    assert_eq!(css("a{b:url(d%2Fe.png)} b{b:url(%ff.png)}"), vec![]);
}

#[test]
fn a_new_name_is_escaped_where_the_context_needs_it() {
    let refs = find_references(Syntax::Css, "app.css", "a{b:url(a.png)}", false);
    let out = rewrite("a{b:url(a.png)}", &refs, |_| {
        Some("a (1) ü.png".to_string())
    });
    assert_eq!(out, "a{b:url(a%20%281%29%20%C3%BC.png)}");
}

#[test]
fn bad_and_unterminated_urls_are_skipped_and_scanning_goes_on() {
    let text = "a{b:url(a b.png)} c{b:url(a\"b.png)} d{b:url(a(b.png)} e{b:url(\"x.png\" junk)} f{b:url(ok.png)}";
    assert_eq!(targets(Syntax::Css, "app.css", text, false), ["ok.png"]);
    for odd in [
        "a{b:url(a.png",
        "a{b:url(",
        "a{b:url(  ",
        "a{b:url('a.png",
        "a{b:url('a.png')",
        "/* url(a.png)",
        "'",
        "\"url(a.png)",
        "@import",
        "@import '",
        "@import \"a.css",
        "/*# sourceMappingURL=",
        "\\",
        "u",
        "url",
        "é\\",
    ] {
        let refs = find_references(Syntax::Css, "app.css", odd, false);
        assert!(refs.len() <= 1, "{odd:?}");
        assert_eq!(rewrite(odd, &[], fingerprinted), odd);
    }
    assert_eq!(
        targets(Syntax::Css, "app.css", "a{b:url('a.png')", false),
        ["a.png"]
    );
}

#[test]
fn js_source_map_comment_is_line_anchored() {
    let text = "var a = 1;\n//# sourceMappingURL=app.js.map\n";
    assert_eq!(
        found(Syntax::Js, "js/app.js", text, false),
        vec![triple("app.js.map", "js/app.js.map", "")]
    );
    assert_eq!(
        rewritten(Syntax::Js, "js/app.js", text, false),
        "var a = 1;\n//# sourceMappingURL=app.js.3f2a9c1b7d4e.map\n"
    );
    assert_eq!(
        targets(
            Syntax::Js,
            "app.js",
            "x()\n  \t//@ sourceMappingURL=old.map",
            false
        ),
        ["old.map"]
    );
    assert_eq!(
        targets(
            Syntax::Js,
            "app.js",
            "x()\r\n//# sourceMappingURL=a.map\r\n",
            false
        ),
        ["a.map"]
    );
    assert_eq!(
        targets(
            Syntax::Js,
            "app.js",
            "x()\n/*# sourceMappingURL=b.map */",
            false
        ),
        ["b.map"]
    );
    assert_eq!(
        targets(
            Syntax::Js,
            "app.js",
            "x()\n/*# sourceMappingURL=c.map*/\n",
            false
        ),
        ["c.map"]
    );
    assert_eq!(
        targets(
            Syntax::Js,
            "app.js",
            "//# sourceMappingURL=first.map",
            false
        ),
        ["first.map"]
    );
}

#[test]
fn js_source_map_comment_mid_line_is_not_the_files() {
    for text in [
        "var s = \"//# sourceMappingURL=x.map\";",
        "f(); //# sourceMappingURL=x.map",
        "var s = '\\n//# sourceMappingURL=x.map';",
        "x()\n// # sourceMappingURL=x.map",
        "x()\n//# sourceMappingURL=data:application/json;base64,e30=",
        "x()\n//# sourceMappingURL=https://maps.example.com/x.map",
    ] {
        assert_eq!(
            targets(Syntax::Js, "app.js", text, false),
            Vec::<String>::new(),
            "{text:?}"
        );
    }
}

#[test]
fn js_does_not_look_at_css_syntax() {
    let text = "el.style.background = \"url(a.png)\";\n// @import 'b.css'";
    assert_eq!(
        targets(Syntax::Js, "app.js", text, false),
        Vec::<String>::new()
    );
    assert_eq!(
        targets(Syntax::Js, "app.js", text, true),
        Vec::<String>::new()
    );
}

const MODULE: &str = r#"import a from "./a.js";
import { b, c as d } from './lib/b.js';
import * as e from "../e.js";
import f, { g } from "./f.mjs?v=2";
import "./side-effect.js";
import x from "bare-package";
import y from "/abs/y.js";
import type { T } from "./types.js";
import {
  h, // comment
  /* more */ i,
  "j-k" as jk,
} from "./multi.js";
export { l } from "./l.js";
export * from "./m.js";
export * as n from './n.js';
export { local };
export default function o() {}
const p = import("./lazy.js");
const q = import( /* webpackChunkName: "q" */ './q.js' , { with: {} });
const r = import(`./tpl.js`);
const s = import(`./${name}.js`);
const t = import("./dyn" + ext);
console.log(import.meta.url);
"#;

#[test]
fn js_imports_are_opt_in() {
    assert_eq!(
        targets(Syntax::Js, "js/app.js", MODULE, false),
        Vec::<String>::new()
    );
    assert_eq!(rewritten(Syntax::Js, "js/app.js", MODULE, false), MODULE);
}

#[test]
fn js_relative_imports_in_every_form() {
    assert_eq!(
        targets(Syntax::Js, "js/app.js", MODULE, true),
        [
            "js/a.js",
            "js/lib/b.js",
            "e.js",
            "js/f.mjs",
            "js/side-effect.js",
            "js/types.js",
            "js/multi.js",
            "js/l.js",
            "js/m.js",
            "js/n.js",
            "js/lazy.js",
            "js/q.js",
            "js/tpl.js",
        ]
    );
    let out = rewritten(Syntax::Js, "js/app.js", MODULE, true);
    for expected in [
        "import a from \"./a.3f2a9c1b7d4e.js\";",
        "from './lib/b.3f2a9c1b7d4e.js';",
        "from \"../e.3f2a9c1b7d4e.js\";",
        "from \"./f.3f2a9c1b7d4e.mjs?v=2\";",
        "import \"./side-effect.3f2a9c1b7d4e.js\";",
        "import x from \"bare-package\";",
        "import y from \"/abs/y.js\";",
        "} from \"./multi.3f2a9c1b7d4e.js\";",
        "export * as n from './n.3f2a9c1b7d4e.js';",
        "import(\"./lazy.3f2a9c1b7d4e.js\")",
        "'./q.3f2a9c1b7d4e.js' , { with: {} }",
        "import(`./tpl.3f2a9c1b7d4e.js`)",
        "import(`./${name}.js`)",
        "import(\"./dyn\" + ext)",
    ] {
        assert!(out.contains(expected), "{expected} in\n{out}");
    }
}

#[test]
fn js_imports_in_comments_strings_and_members_are_ignored() {
    let text = r#"// import a from "./c1.js";
/* import("./c2.js") */
const s1 = "import('./s1.js')";
const s2 = 'export * from "./s2.js"';
const s3 = `import "./s3.js" ${ x + `import('./s4.js')` } import "./s5.js"`;
const re = /import\("\.\/re.js"\)'/g;
obj.import("./member.js");
this.#import("./private.js");
const o = { import: "./key.js" };
if (a / b) import("./real.js");
"#;
    assert_eq!(targets(Syntax::Js, "app.js", text, true), ["real.js"]);
}

#[test]
fn js_regex_and_division_are_told_apart() {
    let text = "const re = /[\"']/g; import(\"./after-re.js\");\n\
        const half = a / 2; import(\"./after-div.js\"); const b = c / 3;\n\
        if (x) return /'/.test(y) || import('./after-return.js');\n\
        const n = (1) / 2 / import('./after-paren.js');\n\
        i++ / 2; import('./after-postfix.js'); j = k / 3;\n\
        x = [] + /'/.source; ++n / 2; import('./after-unary.js');";
    assert_eq!(
        targets(Syntax::Js, "app.js", text, true),
        [
            "after-re.js",
            "after-div.js",
            "after-return.js",
            "after-paren.js",
            "after-postfix.js",
            "after-unary.js"
        ]
    );
}

#[test]
fn js_template_substitutions_nest() {
    let text = "const a = `x ${ {k: `y ${z}`}.k } w`; import \"./after.js\";\nconst b = `${`${'`'}`}`; import('./later.js');";
    assert_eq!(
        targets(Syntax::Js, "app.js", text, true),
        ["after.js", "later.js"]
    );
}

#[test]
fn js_odd_text_does_not_panic() {
    for odd in [
        "import",
        "import(",
        "import('./a.js'",
        "import {",
        "import { a",
        "import a from",
        "import a from '",
        "export {",
        "export * from \"./a.js",
        "`${",
        "`${ `",
        "}}}}",
        "/",
        "/[",
        "x = /\\",
        "'\\",
        "\"",
        "import\u{e9}(\"./a.js\")",
        "\u{1F4A5} import('./a.js') \u{1F4A5}",
    ] {
        let _ = find_references(Syntax::Js, "app.js", odd, true);
    }
    assert_eq!(
        targets(
            Syntax::Js,
            "app.js",
            "\u{1F4A5} import('./a.js') \u{1F4A5}",
            true
        ),
        ["a.js"]
    );
}

const SOURCE_MAP: &str = "{\"version\":3,\"sources\":[\"../src/a.ts\",\"{\\\"x\\\"}\"],\
    \"names\":[],\"x_nested\":{\"file\":\"no.js\",\"arr\":[1,{\"b\":[]}]},\"n\":-1.5e3,\"t\":true,\
    \"file\" : \"app.js\",\n  \"mappings\":\"AAAA;\"}";

#[test]
fn source_map_file_field_only_top_level() {
    assert_eq!(
        found(Syntax::SourceMap, "js/app.js.map", SOURCE_MAP, false),
        vec![triple("app.js", "js/app.js", "")]
    );
    let out = rewritten(Syntax::SourceMap, "js/app.js.map", SOURCE_MAP, false);
    assert_eq!(
        out,
        SOURCE_MAP.replace(
            "\"file\" : \"app.js\"",
            "\"file\" : \"app.3f2a9c1b7d4e.js\""
        )
    );
}

#[test]
fn source_map_prefix_escapes_and_garbage() {
    let prefixed = ")]}'\n{\"version\":3,\"file\":\"app.js\"}";
    assert_eq!(
        targets(Syntax::SourceMap, "app.js.map", prefixed, false),
        ["app.js"]
    );
    let bom = "\u{feff}{\"file\":\"app.js\"}";
    assert_eq!(
        targets(Syntax::SourceMap, "app.js.map", bom, false),
        ["app.js"]
    );
    for no_ref in [
        "{\"file\":\"js\\/app.js\"}",
        "{\"file\":null}",
        "[{\"file\":\"app.js\"}]",
        "{\"sections\":[{\"map\":{\"file\":\"app.js\"}}]}",
        "{\"file\":\"app.js",
        "{\"file\"",
        "{\"a\":[1,2",
        "{\"a\" 1, \"file\":\"app.js\"}",
        "{",
        "",
        "not json",
    ] {
        assert_eq!(
            targets(Syntax::SourceMap, "app.js.map", no_ref, false),
            Vec::<String>::new(),
            "{no_ref:?}"
        );
    }
}

#[test]
fn other_files_have_no_references() {
    assert_eq!(
        targets(
            Syntax::Other,
            "index.html",
            "<img src=\"a.png\"> url(a.png)",
            true
        ),
        Vec::<String>::new()
    );
}

#[test]
fn references_without_a_new_name_stay_as_written() {
    let text = "a{b:url(a.png)} b{b:url(b.png)}";
    let refs = find_references(Syntax::Css, "app.css", text, false);
    let out = rewrite(text, &refs, |t| {
        (t == "b.png").then(|| "b.111111111111.png".to_string())
    });
    assert_eq!(out, "a{b:url(a.png)} b{b:url(b.111111111111.png)}");
    assert_eq!(rewrite(text, &refs, |_| None), text);
}

#[test]
fn stale_overlapping_or_odd_references_are_skipped() {
    let text = "a{b:url(a.png)}";
    let good = Reference {
        range: 8..13,
        url: "a.png".into(),
        target: "a.png".into(),
        suffix: String::new(),
    };
    let stale = Reference {
        range: 0..5,
        ..good.clone()
    };
    let out_of_bounds = Reference {
        range: 10..99,
        ..good.clone()
    };
    // A reversed range, as a caller with stale offsets could pass.
    let inverted = Reference {
        range: Range { start: 12, end: 3 },
        ..good.clone()
    };
    let refs = [good.clone(), good.clone(), stale, out_of_bounds, inverted];
    assert_eq!(
        rewrite(text, &refs, fingerprinted),
        "a{b:url(a.3f2a9c1b7d4e.png)}"
    );
    assert_eq!(
        rewrite(text, std::slice::from_ref(&good), |_| Some(
            "../x.png".into()
        )),
        text
    );
    assert_eq!(rewrite(text, &[good], |_| Some(String::new())), text);
    let mid_char = Reference {
        range: 1..2,
        url: "\u{e9}".into(),
        target: "x".into(),
        suffix: String::new(),
    };
    assert_eq!(
        rewrite("\u{e9}\u{e9}", &[mid_char], fingerprinted),
        "\u{e9}\u{e9}"
    );
}

#[test]
fn rewriting_twice_changes_nothing_more() {
    let text = "@import 'b.css';a{b:url(\"../img/a.png?v=1#x\")} c{b:url(/f/c%20d.woff2)}\n/*# sourceMappingURL=app.css.map */";
    let once = rewritten_css(text);
    assert_ne!(once, text);
    assert_eq!(rewritten_css(&once), once);
    let module = rewritten(Syntax::Js, "js/app.js", MODULE, true);
    assert_eq!(rewritten(Syntax::Js, "js/app.js", &module, true), module);
}

const FONT_AWESOME: &str =
    include_str!("../../tests/fixtures/font-awesome-4.7.0/css/font-awesome.css");
const BOOTSTRAP_ICONS: &str = include_str!("../../tests/fixtures/bootstrap-icons-1.13.2.css");

#[test]
fn font_awesome_4_7_0_references() {
    assert_eq!(
        found(Syntax::Css, "css/font-awesome.css", FONT_AWESOME, false),
        vec![
            triple(
                "../fonts/fontawesome-webfont.eot?v=4.7.0",
                "fonts/fontawesome-webfont.eot",
                "?v=4.7.0"
            ),
            triple(
                "../fonts/fontawesome-webfont.eot?#iefix&v=4.7.0",
                "fonts/fontawesome-webfont.eot",
                "?#iefix&v=4.7.0"
            ),
            triple(
                "../fonts/fontawesome-webfont.woff2?v=4.7.0",
                "fonts/fontawesome-webfont.woff2",
                "?v=4.7.0"
            ),
            triple(
                "../fonts/fontawesome-webfont.woff?v=4.7.0",
                "fonts/fontawesome-webfont.woff",
                "?v=4.7.0"
            ),
            triple(
                "../fonts/fontawesome-webfont.ttf?v=4.7.0",
                "fonts/fontawesome-webfont.ttf",
                "?v=4.7.0"
            ),
            triple(
                "../fonts/fontawesome-webfont.svg?v=4.7.0#fontawesomeregular",
                "fonts/fontawesome-webfont.svg",
                "?v=4.7.0#fontawesomeregular"
            ),
        ]
    );
    let out = rewritten(Syntax::Css, "css/font-awesome.css", FONT_AWESOME, false);
    let hash_len = ".3f2a9c1b7d4e".len();
    assert_eq!(out.len(), FONT_AWESOME.len() + 6 * hash_len);
    assert_eq!(out.replace(".3f2a9c1b7d4e", ""), FONT_AWESOME);
    assert!(out.contains(
        "url('../fonts/fontawesome-webfont.3f2a9c1b7d4e.eot?#iefix&v=4.7.0') format('embedded-opentype')"
    ));
    assert_eq!(
        rewritten(Syntax::Css, "css/font-awesome.css", &out, false),
        out
    );
}

#[test]
fn bootstrap_icons_1_13_2_references() {
    const Q: &str = "?e34853135f9e39acf64315236852cd5a";
    assert_eq!(
        found(
            Syntax::Css,
            "font/bootstrap-icons.css",
            BOOTSTRAP_ICONS,
            false
        ),
        vec![
            triple(
                &format!("./fonts/bootstrap-icons.woff2{Q}"),
                "font/fonts/bootstrap-icons.woff2",
                Q
            ),
            triple(
                &format!("./fonts/bootstrap-icons.woff{Q}"),
                "font/fonts/bootstrap-icons.woff",
                Q
            ),
        ]
    );
    let out = rewritten(
        Syntax::Css,
        "font/bootstrap-icons.css",
        BOOTSTRAP_ICONS,
        false,
    );
    assert!(out.contains(&format!(
        "url(\"./fonts/bootstrap-icons.3f2a9c1b7d4e.woff2{Q}\") format(\"woff2\")"
    )));
    assert_eq!(out.replace(".3f2a9c1b7d4e", ""), BOOTSTRAP_ICONS);
}

/// xorshift64: deterministic, so a failure reproduces from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

const FRAGMENTS: &[&str] = &[
    "url(",
    ")",
    "\"",
    "'",
    "/*",
    "*/",
    "@import",
    "#",
    "?",
    "../",
    "./",
    "a.png",
    "\n",
    " ",
    "\t",
    "é",
    "日本",
    "💥",
    "%20",
    "%",
    "\\",
    "data:",
    "https:",
    "//",
    "/",
    "sourceMappingURL=",
    "//# ",
    "/*# ",
    "import",
    "export",
    "from",
    "(",
    "{",
    "}",
    "`",
    "${",
    "\"file\"",
    ":",
    ",",
    "[",
    "]",
    "b.css",
    "x",
    ";",
    "\r\n",
    "*",
    "<",
    ">",
    "<img ",
    "src=",
    "href=",
    "srcset=",
    " 2x",
    "<style>",
    "</style>",
    "<script>",
    "</script>",
    "<!--",
    "-->",
    "style=",
    "<base href=x>",
];

/// Pieces that spell no trigger by themselves; the test still checks,
/// since two of them may join into one (`url` + `(`).
const QUIET_FRAGMENTS: &[&str] = &[
    ")",
    "\"",
    "'",
    "/*",
    "*/",
    "#",
    "?",
    "../",
    "./",
    "a.png",
    "\n",
    " ",
    "é",
    "日本",
    "💥",
    "%20",
    "%",
    "\\",
    "data:",
    "//",
    "/",
    "(",
    "url",
    "{",
    "}",
    "`",
    "${",
    "@",
    "sourceMapping",
    "URL=",
    "file",
    "imp",
    "ort",
    ":",
];

fn random_text(rng: &mut Rng, alphabet: &[&str]) -> String {
    let len = rng.below(40);
    (0..len)
        .map(|_| alphabet[rng.below(alphabet.len())])
        .collect()
}

/// Pieces of URLs, so that reference-shaped text is common enough for
/// the rewriting half of the property to be exercised.
const URL_PIECES: &[&str] = &[
    "a.png",
    "../",
    "./",
    "img/",
    "/",
    "%20",
    "é",
    "日本.css",
    "?v=1",
    "#x",
    "?#iefix",
    "b c",
    "%C3%A9",
    "%",
    ".",
    "..",
    "x.js",
    "'",
    ")",
    "data:",
    "//",
];

/// The shapes a reference takes in each syntax, with `{}` for the URL.
const REFERENCE_SHAPES: &[&str] = &[
    "url({})",
    "url( '{}' )",
    "url(\"{}\")",
    "@import '{}';",
    "@import url({});",
    "/*# sourceMappingURL={} */",
    "\n//# sourceMappingURL={}\n",
    "import x from \"./{}\";",
    "import('../{}')",
    "export * from './{}'",
    "{\"file\":\"{}\"}",
    "<img src=\"{}\">",
    "<a href='{}'>",
    "<link href={} rel=x>",
    "<img srcset=\"{} 1x, {} 2x\">",
    "<p style=\"background:url({})\">",
    "<style>a{b:url({})}</style>",
    "{\"icons\":[{\"src\": \"{}\"}]}",
];

fn random_reference(rng: &mut Rng) -> String {
    let url: String = (0..1 + rng.below(4))
        .map(|_| URL_PIECES[rng.below(URL_PIECES.len())])
        .collect();
    REFERENCE_SHAPES[rng.below(REFERENCE_SHAPES.len())].replace("{}", &url)
}

fn random_text_with_references(rng: &mut Rng) -> String {
    let len = rng.below(30);
    (0..len)
        .map(|_| match rng.below(4) {
            0 => random_reference(rng),
            _ => FRAGMENTS[rng.below(FRAGMENTS.len())].to_string(),
        })
        .collect()
}

fn has_trigger(syntax: Syntax, text: &str, js_imports: bool) -> bool {
    let lower = text.to_ascii_lowercase();
    match syntax {
        Syntax::Css => {
            lower.contains("url(") || lower.contains("@import") || text.contains("sourceMappingURL")
        }
        Syntax::Js => {
            text.contains("sourceMappingURL")
                || (js_imports && (text.contains("import") || text.contains("export")))
        }
        Syntax::SourceMap => text.contains("\"file\""),
        Syntax::Html => text.contains('<'),
        Syntax::WebManifest => text.contains("\"src\""),
        Syntax::Other => false,
    }
}

const MODES: [(Syntax, &str, bool); 7] = [
    (Syntax::Css, "css/sub/app.css", false),
    (Syntax::Js, "js/app.js", false),
    (Syntax::Js, "js/app.js", true),
    (Syntax::SourceMap, "js/app.js.map", false),
    (Syntax::Html, "blog/post.html", false),
    (Syntax::WebManifest, "app/site.webmanifest", false),
    (Syntax::Other, "img/logo.png", true),
];

#[test]
fn random_text_never_panics_and_rewrites_stably() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut rewritten = [0; MODES.len()];
    for _ in 0..6000 {
        let text = random_text_with_references(&mut rng);
        for (mode, (syntax, referrer, js_imports)) in MODES.into_iter().enumerate() {
            let refs = find_references(syntax, referrer, &text, js_imports);
            let mut last_end = 0;
            for r in &refs {
                assert!(r.range.start >= last_end, "ordered, disjoint: {text:?}");
                last_end = r.range.end;
                assert_eq!(text.get(r.range.clone()), Some(r.url.as_str()), "{text:?}");
                assert!(r.url.ends_with(&r.suffix), "{text:?}");
                assert!(
                    !r.target.is_empty() && !r.target.starts_with('/'),
                    "{text:?}"
                );
                assert!(
                    !r.target
                        .split('/')
                        .any(|s| s.is_empty() || s == "." || s == ".."),
                    "{text:?}"
                );
            }
            let once = rewrite(&text, &refs, fingerprinted);
            let again = rewrite(
                &once,
                &find_references(syntax, referrer, &once, js_imports),
                fingerprinted,
            );
            assert_eq!(again, once, "idempotent for {syntax:?} on {text:?}");
            if once != text {
                rewritten[mode] += 1;
            }
        }
    }
    // Every syntax but Other must have had plenty of real rewrites.
    let [css, js, js_imports, map, html, manifest, other] = rewritten;
    assert!(
        css > 1000
            && js > 200
            && js_imports > js + 200
            && map > 20
            && html > 500
            && manifest > 20
            && other == 0,
        "{rewritten:?}"
    );
}

#[test]
fn random_text_without_a_trigger_comes_back_byte_identical() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut checked = 0;
    for _ in 0..4000 {
        let text = random_text(&mut rng, QUIET_FRAGMENTS);
        for (syntax, referrer, js_imports) in MODES {
            if has_trigger(syntax, &text, js_imports) {
                continue;
            }
            checked += 1;
            let refs = find_references(syntax, referrer, &text, js_imports);
            assert_eq!(refs, vec![], "{syntax:?} on {text:?}");
            assert_eq!(rewrite(&text, &refs, fingerprinted), text);
        }
    }
    assert!(
        checked > 10_000,
        "the generator should mostly avoid triggers, checked {checked}"
    );
}

/// The same properties over arbitrary Unicode text as well as
/// reference-shaped pieces, with proptest shrinking any failure to a
/// minimal input.
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            prop::sample::select(FRAGMENTS).prop_map(String::from),
            (
                prop::sample::select(REFERENCE_SHAPES),
                prop::collection::vec(prop::sample::select(URL_PIECES), 1..5),
            )
                .prop_map(|(shape, url)| shape.replace("{}", &url.concat())),
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(piece(), 0..16).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn rewriting_never_panics_and_is_idempotent(text in text()) {
            for (syntax, referrer, js_imports) in MODES {
                let refs = find_references(syntax, referrer, &text, js_imports);
                for r in &refs {
                    prop_assert_eq!(text.get(r.range.clone()), Some(r.url.as_str()));
                }
                let once = rewrite(&text, &refs, fingerprinted);
                let found_again = find_references(syntax, referrer, &once, js_imports);
                prop_assert_eq!(rewrite(&once, &found_again, fingerprinted), once.clone());
                // Without percent-escapes to re-spell, a rewrite only
                // inserts the hash into file names.
                if !text.contains('%') {
                    let hash = format!(".{HASH}");
                    prop_assert_eq!(once.replace(&hash, ""), text.replace(&hash, ""));
                }
            }
        }

        #[test]
        fn text_without_a_trigger_is_left_byte_identical(text in "[^(@=\"'`]*") {
            for (syntax, referrer, js_imports) in MODES {
                let refs = find_references(syntax, referrer, &text, js_imports);
                prop_assert!(refs.is_empty(), "{:?}", refs);
                prop_assert_eq!(rewrite(&text, &refs, fingerprinted), text.clone());
            }
        }
    }
}

#[test]
fn relative_urls_that_climb_above_the_root_are_told_apart() {
    assert!(leaves_root("css/a.css", "../../outside.png"));
    assert!(leaves_root("a.html", "../x.png?v=1"));
    assert!(!leaves_root("css/a.css", "../img/x.png"));
    // `/..` stays at the root, as browsers read it; the rest names no file.
    assert!(!leaves_root("a.css", "/../x.png"));
    assert!(!leaves_root("a.css", "https://example.org/../x.png"));
    assert!(!leaves_root("css/a.css", "../../"));
    let (found, outside) = find_references_and_outside(
        Syntax::Css,
        "css/a.css",
        "a{background:url(../../o.png)} b{background:url(../i.png)}",
        false,
    );
    assert_eq!(outside, ["../../o.png"]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].target, "i.png");
}

/// `text` with integrity attributes for `css/site.css`, `js/app.js` and
/// `js/mod.js`, as `blog/post.html` would get them.
fn with_integrity(text: &str) -> String {
    let known = |key: &str| {
        ["css/site.css", "js/app.js", "js/mod.js"]
            .contains(&key)
            .then(|| format!("sha384-{}", key.replace('/', "_")))
    };
    String::from_utf8(add_integrity(text.as_bytes(), "blog/post.html", known)).unwrap()
}

#[test]
fn integrity_goes_on_scripts_stylesheets_and_module_preloads() {
    let text = "<!doctype html>\n<link rel=\"stylesheet\" href=\"../css/site.css\" media=all>\n<link rel=modulepreload href='/js/mod.js'/>\n<script src=../js/app.js defer></script>\n<p>x</p>";
    assert_eq!(
        with_integrity(text),
        "<!doctype html>\n<link rel=\"stylesheet\" href=\"../css/site.css\" media=all integrity=\"sha384-css_site.css\" crossorigin=\"anonymous\">\n<link rel=modulepreload href='/js/mod.js' integrity=\"sha384-js_mod.js\" crossorigin=\"anonymous\"/>\n<script src=../js/app.js defer integrity=\"sha384-js_app.js\" crossorigin=\"anonymous\"></script>\n<p>x</p>"
    );
}

#[test]
fn integrity_keeps_the_tag_s_own_spacing_and_self_closing_slash() {
    assert_eq!(
        with_integrity("<LINK REL=\"Alternate StyleSheet\" HREF=\"/css/site.css\" />"),
        "<LINK REL=\"Alternate StyleSheet\" HREF=\"/css/site.css\" integrity=\"sha384-css_site.css\" crossorigin=\"anonymous\" />"
    );
    // The slash of an unquoted value is part of the URL: not a self-closing tag.
    assert_eq!(
        with_integrity("<script src=/js/app.js/></script>"),
        "<script src=/js/app.js/></script>"
    );
    assert_eq!(
        with_integrity("<script\n  src=\"/js/app.js\"\n></script>"),
        "<script\n  src=\"/js/app.js\"\n integrity=\"sha384-js_app.js\" crossorigin=\"anonymous\"></script>"
    );
}

#[test]
fn integrity_leaves_other_tags_and_unknown_files_alone() {
    let text = "<link rel=icon href=/css/site.css><link rel=preload href=/js/app.js as=script><a href=/js/app.js>a</a><img src=/js/app.js><script src=/js/other.js></script><script src=https://cdn.example/js/app.js></script><script>let s = '<script src=/js/app.js>';</script><!-- <script src=/js/app.js></script> -->";
    assert_eq!(with_integrity(text), text);
}

#[test]
fn an_integrity_already_written_is_kept_and_a_crossorigin_is_not_doubled() {
    let written = "<script src=/js/app.js integrity=\"sha512-mine\"></script>";
    assert_eq!(with_integrity(written), written);
    assert_eq!(
        with_integrity("<script src=/js/app.js crossorigin=use-credentials></script>"),
        "<script src=/js/app.js crossorigin=use-credentials integrity=\"sha384-js_app.js\"></script>"
    );
}

#[test]
fn integrity_is_not_added_under_a_base_href() {
    let text = "<base href=\"/other/\"><script src=/js/app.js></script>";
    assert_eq!(with_integrity(text), text);
}
