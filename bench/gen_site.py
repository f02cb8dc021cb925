#!/usr/bin/env python3
"""Deterministic generator of a realistic static site build, for benchmarks.

    gen_site.py --files 10000 --seed 1 OUT                  # ~220 MB
    gen_site.py --files 100000 --seed 1 OUT                 # ~0.9 GB
    gen_site.py --files 10000 --seed 1 --mutate 1 --round 2 OUT

The mix per 10,000 files: ~2,000 raster images (20-300 KB, random bytes
behind a real PNG/JPEG/WebP/GIF header), 50 large files (1-5 MB: video, PDF,
archives, wasm, vendor bundles), and text: CSS, JS with source maps, SVG,
HTML, JSON, fonts (mostly 1-30 KB). CSS files reference images and fonts with
relative `url(../img/...)`, some `@import` an earlier stylesheet, and JS files
end with a `sourceMappingURL` comment naming their map, so reference rewriting
is exercised. Above 40,000 files every size is scaled down (by 40000/N) so
the tree stays under a gigabyte.

Everything derives from (--files, --seed[, --round]): the same arguments give
the same bytes on any machine (Python 3.11, stdlib only). By default OUT
is wiped and rebuilt; --reuse keeps a tree that an earlier run generated with
the same arguments and that was never mutated.

--mutate PCT rewrites PCT% of the files of an existing tree (generated with
the same --files and --seed) with new content of the same kind; --round K
picks a different set and different content for each K.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import sys
import time

WORDS = (
    "the of and to in is that it for on with as was at by an be this from or "
    "have not are but all were when we there can which their said if do will "
    "each about how up out them then she many some so these would other into "
    "has more her two like him see time could no make than first been its who "
    "now people my made over did down only way find use may water long little "
    "very after words called just where most know get through back much before "
    "go good new write our used me man too any day same right look think also "
    "around another came come work three word must because does part even place "
    "well such here take why things help put years different away again off "
    "went old number great tell men say small every found still between name "
    "should home big give air line set own under read last never us left end "
    "along while might next sound below saw something thought both few those "
    "always looked show large often together asked house world going want "
    "school important until form food keep children feet land side without boy "
    "once animals life enough took sometimes four head above kind began almost "
    "live page got earth need far hand high year mother light parts country "
    "father let night following picture being study second eyes soon times "
    "story boys since white days ever paper hard near sentence better best "
    "across during today others however sure means knew try told young miles "
    "sun ways thing whole hear example heard several change answer room sea "
    "against top turned learn point city play toward five using himself usually"
).split()

CSS_PROPS = [
    ("color", lambda r: "#%06x" % r.getrandbits(24)),
    ("background-color", lambda r: "rgba(%d, %d, %d, %.2f)" % (r.randrange(256), r.randrange(256), r.randrange(256), r.random())),
    ("margin", lambda r: "%dpx %dpx" % (r.randrange(0, 48, 4), r.randrange(0, 48, 4))),
    ("padding", lambda r: "%.2frem %.2frem" % (r.random() * 3, r.random() * 3)),
    ("font-size", lambda r: "%.3frem" % (0.6 + r.random() * 2)),
    ("line-height", lambda r: "%.2f" % (1 + r.random())),
    ("display", lambda r: r.choice(["flex", "grid", "block", "inline-block", "none", "contents"])),
    ("justify-content", lambda r: r.choice(["center", "space-between", "flex-start", "flex-end"])),
    ("border", lambda r: "%dpx %s #%06x" % (r.randrange(1, 4), r.choice(["solid", "dashed", "dotted"]), r.getrandbits(24))),
    ("border-radius", lambda r: "%dpx" % r.randrange(0, 24)),
    ("transition", lambda r: "%s %dms ease-in-out" % (r.choice(["opacity", "transform", "color", "all"]), r.randrange(50, 600, 50))),
    ("transform", lambda r: "translate(%dpx, %dpx) rotate(%ddeg)" % (r.randrange(-40, 40), r.randrange(-40, 40), r.randrange(0, 360))),
    ("box-shadow", lambda r: "0 %dpx %dpx rgba(0, 0, 0, .%02d)" % (r.randrange(1, 8), r.randrange(2, 30), r.randrange(5, 60))),
    ("z-index", lambda r: str(r.randrange(-1, 1000))),
    ("grid-template-columns", lambda r: "repeat(%d, minmax(0, 1fr))" % r.randrange(1, 13)),
    ("width", lambda r: "calc(100%% - %dpx)" % r.randrange(0, 400, 8)),
    ("max-width", lambda r: "%dpx" % r.randrange(320, 1600, 16)),
    ("opacity", lambda r: "%.2f" % r.random()),
    ("font-family", lambda r: r.choice(['"Inter", system-ui, sans-serif', "Georgia, serif", "ui-monospace, monospace"])),
]

JS_TEMPLATES = [
    "  const {a} = {b}.{c}({d}, {n});",
    "  if ({a} && {a}.{c}) {{ {b}.{d}({a}, '{w}'); }}",
    "  for (let i = 0; i < {a}.length; i += {n}) {{ {b}[i] = {c}(i); }}",
    "  return Promise.all({a}.map(({b}) => fetch(`/api/{w}/${{{b}.id}}`)));",
    "  export function {a}{C}({b}, {c} = {n}) {{ return {b} * {c} + {d}; }}",
    "  document.querySelectorAll('.{w}-{a}').forEach((el) => el.classList.toggle('{c}'));",
    "  // {s}",
    "  window.addEventListener('{ev}', debounce(() => {a}.{c}(), {n}));",
    "  let {a} = new Map([['{w}', {n}], ['{b}', {n2}]]);",
    "  console.debug('[{w}]', {a}, {b}?.{c} ?? null);",
    "  throw new Error(`{s}: ${{{a}}}`);",
    "  {a}.{c} = {{ ...{a}.{c}, {b}: '{w}', {d}: {n} }};",
]
JS_EVENTS = ["resize", "scroll", "load", "keydown", "click", "popstate", "visibilitychange"]

HTML_TAGS = ["p", "p", "p", "li", "h2", "h3", "blockquote"]

KIND_EXT = {
    "png": "png", "jpg": "jpg", "webp": "webp", "gif": "gif",
    "css": "css", "js": "js", "map": "map", "svg": "svg", "html": "html",
    "json": "json", "woff2": "woff2", "txt": "txt", "xml": "xml",
    "mp4": "mp4", "pdf": "pdf", "zip": "zip", "wasm": "wasm", "bundle": "js", "bigjpg": "jpg",
}
BINARY = {"png", "jpg", "webp", "gif", "woff2", "mp4", "pdf", "zip", "wasm", "bigjpg"}


def ident(r: random.Random) -> str:
    return r.choice(WORDS) + r.choice(WORDS).capitalize()


def sentence(r: random.Random, n: int | None = None) -> str:
    n = n or r.randrange(6, 18)
    s = " ".join(r.choice(WORDS) for _ in range(n))
    return s[0].upper() + s[1:] + "."


class Pools:
    """Shared snippets that files draw from, so text compresses like real
    code (repetition across and within files) while every file stays unique."""

    def __init__(self, seed: int):
        r = random.Random(f"pools:{seed}")
        self.css = [self._css_rule(r) for _ in range(4000)]
        self.js = [self._js_line(r) for _ in range(8000)]
        self.html = [self._html_block(r) for _ in range(4000)]
        self.svg = [self._svg_path(r) for _ in range(4000)]
        self.json = [self._json_item(r) for _ in range(4000)]

    @staticmethod
    def _css_rule(r):
        sel = ".%s-%s%s" % (r.choice(WORDS), r.choice(WORDS), r.choice(["", "__" + r.choice(WORDS), "--" + r.choice(WORDS), ":hover", " > a", "::after"]))
        props = "".join("  %s: %s;\n" % (p, f(r)) for p, f in r.sample(CSS_PROPS, r.randrange(2, 7)))
        if r.random() < 0.15:
            return "@media (min-width: %dpx) {\n%s {\n%s}\n}\n" % (r.randrange(480, 1440, 16), sel, props)
        return "%s {\n%s}\n" % (sel, props)

    @staticmethod
    def _js_line(r):
        t = r.choice(JS_TEMPLATES)
        return t.format(a=ident(r), b=ident(r), c=r.choice(WORDS), d=ident(r), C=r.choice(WORDS).capitalize(),
                        n=r.randrange(1, 5000), n2=r.randrange(1, 5000), w=r.choice(WORDS), s=sentence(r),
                        ev=r.choice(JS_EVENTS))

    @staticmethod
    def _html_block(r):
        tag = r.choice(HTML_TAGS)
        body = " ".join(sentence(r) for _ in range(r.randrange(1, 5)))
        if r.random() < 0.3:
            w = r.choice(WORDS)
            body += ' <a href="/%s/%s/">%s</a>' % (r.choice(WORDS), w, w)
        return "      <%s>%s</%s>\n" % (tag, body, tag)

    @staticmethod
    def _svg_path(r):
        pts = " ".join("%s%.2f %.2f" % (r.choice("LLLQCT"), r.random() * 24, r.random() * 24) for _ in range(r.randrange(4, 20)))
        return '  <path d="M%.2f %.2f %sZ" fill="#%06x" stroke-width="%.1f"/>\n' % (r.random() * 24, r.random() * 24, pts, r.getrandbits(24), r.random() * 2)

    @staticmethod
    def _json_item(r):
        return json.dumps({"id": r.getrandbits(40), "slug": "%s-%s" % (r.choice(WORDS), r.choice(WORDS)),
                          "title": sentence(r, 5), "tags": r.sample(WORDS, 3), "score": round(r.random(), 4)})


class Entry:
    __slots__ = ("index", "path", "kind", "size")

    def __init__(self, index, path, kind, size):
        self.index, self.path, self.kind, self.size = index, path, kind, size


def plan(files: int, seed: int, scale: float) -> list[Entry]:
    """The file list: paths, kinds and target sizes, a pure function of the
    arguments."""
    r = random.Random(f"plan:{seed}:{files}")
    n_large = max(1, round(files * 0.005))
    n_img = round(files * 0.20)
    rest = files - n_large - n_img
    # Text and small binary kinds, by share of the rest.
    shares = [("html", 0.22), ("js", 0.20), ("css", 0.16), ("svg", 0.20), ("json", 0.06),
              ("woff2", 0.02), ("txt", 0.01), ("xml", 0.01)]
    counts = {k: int(rest * s) for k, s in shares}
    counts["js"] += rest - sum(counts.values())
    # A quarter of the JS gets a source map, taken out of the JS count.
    n_map = counts["js"] // 5
    counts["js"] -= n_map

    sections = ["app", "blog", "docs", "shop", "account", "admin", "landing", "help", "news", "vendor"]
    entries: list[tuple[str, str, int]] = []
    used: set[str] = set()

    def unique(path: str) -> str:
        base, dot, ext = path.rpartition(".")
        p, k = path, 1
        while p in used:
            k += 1
            p = "%s-%d.%s" % (base, k, ext)
        used.add(p)
        return p

    def name(ext: str) -> str:
        return "%s-%s.%s" % (r.choice(WORDS), r.choice(WORDS), ext)

    def kb(lo: float, hi: float, skew: float) -> int:
        return int(1024 * lo * (hi / lo) ** (r.random() ** skew) * scale)

    subdirs = max(1, files // 400)

    for _ in range(n_img):
        kind = r.choices(["png", "jpg", "webp", "gif"], [40, 40, 15, 5])[0]
        sub = "%s/%s" % (r.choice(sections), "set%02d" % r.randrange(subdirs))
        entries.append((unique("assets/img/%s/%s" % (sub, name(KIND_EXT[kind]))), kind, kb(20, 300, 6)))
    for _ in range(n_large):
        kind = r.choices(["mp4", "pdf", "zip", "wasm", "bundle", "bigjpg"], [35, 20, 10, 10, 10, 15])[0]
        d = {"mp4": "media/video", "pdf": "media/docs", "zip": "downloads", "wasm": "assets/wasm",
             "bundle": "assets/js/vendor", "bigjpg": "assets/img/hero"}[kind]
        entries.append((unique("%s/%s" % (d, name(KIND_EXT[kind]))), kind, kb(1024, 5 * 1024, 8)))
    for kind, n in counts.items():
        for _ in range(n):
            sec = r.choice(sections)
            if kind == "html":
                depth = r.randrange(1, 4)
                parts = [sec] + [r.choice(WORDS) for _ in range(depth - 1)] + ["%s-%s-%d" % (r.choice(WORDS), r.choice(WORDS), r.randrange(1000))]
                p = "/".join(parts) + "/index.html"
            elif kind == "css":
                p = "assets/css/%s/%s" % (sec, name("css"))
            elif kind == "js":
                p = "assets/js/%s/%s" % (sec, name("js"))
            elif kind == "svg":
                p = "assets/icons/%s/%s" % (sec, name("svg"))
            elif kind == "json":
                p = "data/%s/%s" % (sec, name("json"))
            elif kind == "woff2":
                p = "assets/fonts/%s" % name("woff2")
            elif kind == "txt":
                p = "%s/%s" % (sec, name("txt"))
            else:
                p = "%s/%s" % (sec, name("xml"))
            entries.append((unique(p), kind, kb(1, 30, 1.3)))
    # Source maps: pick JS files and give each a sibling map.
    js_paths = [p for p, k, _ in entries if k == "js"]
    for p in r.sample(js_paths, min(n_map, len(js_paths))):
        entries.append((p + ".map", "map", kb(2, 40, 1.3)))
    entries.append(("index.html", "html", int(12 * 1024 * scale)))
    entries.append(("robots.txt", "txt", 64))
    entries.append(("favicon.ico", "gif", 4 * 1024))
    # Keep the exact count: drop extra text files from the end (never a map's JS).
    entries.sort(key=lambda e: e[0])
    mapped = {p[:-4] for p, k, _ in entries if k == "map"}
    while len(entries) > files:
        for i in range(len(entries) - 1, -1, -1):
            p, k, _ = entries[i]
            if k in ("html", "svg", "json") and p != "index.html" and p not in mapped:
                del entries[i]
                break
    return [Entry(i, p, k, max(s, 16)) for i, (p, k, s) in enumerate(entries)]


HEADERS = {
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x04\x00\x00\x00\x03\x00\x08\x06\x00\x00\x00",
    "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x01\x00H\x00H\x00\x00",
    "bigjpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x01\x00H\x00H\x00\x00",
    "gif": b"GIF89a\x40\x00\x40\x00\xf7\x00\x00",
    "woff2": b"wOF2\x00\x01\x00\x00",
    "mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
    "wasm": b"\x00asm\x01\x00\x00\x00",
}


class Site:
    def __init__(self, entries: list[Entry], seed: int):
        self.entries = entries
        self.seed = seed
        self.pools = Pools(seed)
        self.images = [e.path for e in entries if e.kind in ("png", "jpg", "webp", "gif") and e.path.startswith("assets/img/")]
        self.fonts = [e.path for e in entries if e.kind == "woff2"]
        self.css = [e.path for e in entries if e.kind == "css"]
        self.css_index = {p: i for i, p in enumerate(self.css)}
        self.js = [e.path for e in entries if e.kind in ("js", "bundle")]
        self.mapped = {e.path[:-4] for e in entries if e.kind == "map"}

    def content(self, e: Entry, rnd: int) -> bytes:
        r = random.Random(f"file:{self.seed}:{e.index}:{rnd}")
        size = e.size if rnd == 0 else max(16, int(e.size * (0.9 + 0.2 * r.random())))
        k = e.kind
        if k in BINARY or k == "webp":
            if k == "webp":
                head = b"RIFF" + size.to_bytes(4, "little") + b"WEBPVP8 "
            else:
                head = HEADERS[k]
            tail = b"\xff\xd9" if k in ("jpg", "bigjpg") else b""
            return head + r.randbytes(max(0, size - len(head) - len(tail))) + tail
        return getattr(self, "_" + ("js" if k == "bundle" else k))(e, r, size).encode()

    @staticmethod
    def _fill(out: list[str], have: int, size: int, pool: list[str], r: random.Random) -> int:
        while have < size:
            chunk = r.choices(pool, k=16)
            out.extend(chunk)
            have += sum(len(c) for c in chunk)
        return have

    def _rel(self, frm: str, to: str) -> str:
        return os.path.relpath(to, os.path.dirname(frm)).replace(os.sep, "/")

    def _css(self, e, r, size):
        out = ["/* %s build %016x */\n" % (e.path, r.getrandbits(64))]
        idx = self.css_index.get(e.path, 0)
        if idx > 0 and r.random() < 0.1:
            out.append('@import url("%s");\n' % self._rel(e.path, self.css[r.randrange(idx)]))
        if self.fonts and r.random() < 0.3:
            f = r.choice(self.fonts)
            out.append('@font-face {\n  font-family: "%s";\n  src: url(%s?#iefix) format("woff2"), url("%s") format("woff2");\n  font-display: swap;\n}\n'
                       % (r.choice(WORDS), self._rel(e.path, f), self._rel(e.path, f)))
        for img in r.sample(self.images, min(len(self.images), r.randrange(1, 7))):
            out.append(".%s-%s {\n  background: url(%s) no-repeat center / cover;\n  min-height: %dpx;\n}\n"
                       % (r.choice(WORDS), r.choice(WORDS), self._rel(e.path, img), r.randrange(40, 600)))
        if r.random() < 0.2:
            out.append(".cdn-%s { background-image: url(https://cdn.example.com/%s.png); }\n" % (r.choice(WORDS), r.choice(WORDS)))
        if r.random() < 0.1:
            out.append('.inline-%s { background: url("data:image/svg+xml;utf8,<svg xmlns=\'http://www.w3.org/2000/svg\'/>"); }\n' % r.choice(WORDS))
        self._fill(out, sum(map(len, out)), size, self.pools.css, r)
        return "".join(out)

    def _js(self, e, r, size):
        out = ["/*! %s v%d.%d.%d | build %016x */\n(function () {\n  'use strict';\n"
               % (e.path, r.randrange(10), r.randrange(40), r.randrange(100), r.getrandbits(64))]
        self._fill(out, sum(map(len, out)), size - 64, self.pools.js, r)
        out.append("\n})();\n")
        if e.path in self.mapped:
            out.append("//# sourceMappingURL=%s.map\n" % os.path.basename(e.path))
        return "".join(x if x.endswith("\n") else x + "\n" for x in out)

    def _map(self, e, r, size):
        b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        src = ["webpack://app/./src/%s/%s.ts" % (r.choice(WORDS), ident(r)) for _ in range(r.randrange(1, 12))]
        n = max(0, size - 200 - sum(len(s) for s in src))
        segs = []
        have = 0
        while have < n:
            s = "".join(r.choice(b64) for _ in range(r.randrange(4, 9)))
            segs.append(s)
            have += len(s) + 1
        return json.dumps({"version": 3, "file": os.path.basename(e.path[:-4]), "sources": src,
                           "names": r.sample(WORDS, 8), "mappings": ";".join(",".join(segs[i:i + 6]) for i in range(0, len(segs), 6))})

    def _svg(self, e, r, size):
        out = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" data-build="%016x">\n' % r.getrandbits(64)]
        self._fill(out, len(out[0]), size - 8, self.pools.svg, r)
        out.append("</svg>\n")
        return "".join(out)

    def _html(self, e, r, size):
        css = r.sample(self.css, min(2, len(self.css)))
        js = r.sample(self.js, min(2, len(self.js)))
        out = ["<!doctype html>\n<html lang=\"en\">\n  <head>\n    <meta charset=\"utf-8\">\n    <title>%s</title>\n" % sentence(r, 4)]
        out += ['    <link rel="stylesheet" href="/%s">\n' % c for c in css]
        out += ['    <script defer src="/%s"></script>\n' % j for j in js]
        out.append("  </head>\n  <body>\n    <main data-page=\"%016x\">\n" % r.getrandbits(64))
        if self.images:
            out.append('      <img src="/%s" alt="%s" loading="lazy">\n' % (r.choice(self.images), r.choice(WORDS)))
        self._fill(out, sum(map(len, out)), size - 40, self.pools.html, r)
        out.append("    </main>\n  </body>\n</html>\n")
        return "".join(out)

    def _json(self, e, r, size):
        out = ['{"build": "%016x", "items": [\n' % r.getrandbits(64)]
        have = len(out[0])
        items = []
        while have < size:
            it = r.choice(self.pools.json)
            items.append(it)
            have += len(it) + 2
        return out[0] + ",\n".join(items) + "\n]}\n"

    def _txt(self, e, r, size):
        if e.path == "robots.txt":
            return "User-agent: *\nAllow: /\nSitemap: https://www.example.com/sitemap.xml\n"
        out = []
        have = 0
        while have < size:
            s = sentence(r) + "\n"
            out.append(s)
            have += len(s)
        return "".join(out)

    def _xml(self, e, r, size):
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n']
        have = len(out[0])
        while have < size:
            s = "  <url><loc>https://www.example.com/%s/%s/</loc><lastmod>2026-%02d-%02d</lastmod></url>\n" % (
                r.choice(WORDS), r.choice(WORDS), r.randrange(1, 13), r.randrange(1, 29))
            out.append(s)
            have += len(s)
        out.append("</urlset>\n")
        return "".join(out)


def write(root: str, e: Entry, data: bytes) -> None:
    path = os.path.join(root, e.path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp~"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


_SITE: tuple[Site, str, bool] | None = None


def _write_chunk(chunk: list[Entry]) -> list[tuple[str, int]]:
    """Writes (or, reusing, finds) these entries; their kinds and sizes."""
    site, out, reuse = _SITE
    done = []
    for e in chunk:
        if reuse:
            try:
                done.append((e.kind, os.stat(os.path.join(out, e.path)).st_size))
                continue
            except FileNotFoundError:
                pass
        data = site.content(e, 0)
        write(out, e, data)
        done.append((e.kind, len(data)))
    return done


def default_scale(files: int) -> float:
    return min(1.0, 40000 / files)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", metavar="OUT")
    ap.add_argument("--files", type=int, default=10000, help="number of files (default 10000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=None, help="size factor (default: min(1, 40000/files))")
    ap.add_argument("--mutate", type=float, metavar="PCT", help="rewrite PCT%% of the files of an existing tree")
    ap.add_argument("--round", type=int, default=1, help="which mutation (default 1)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes writing files (default: one per core)")
    ap.add_argument("--reuse", action="store_true", help="keep files already present with the expected size and stamp")
    ap.add_argument("--json", action="store_true", help="print a summary as JSON")
    args = ap.parse_args(argv)
    if args.files < 50:
        ap.error("--files must be at least 50")
    scale = args.scale if args.scale is not None else default_scale(args.files)
    t0 = time.monotonic()
    entries = plan(args.files, args.seed, scale)
    site = Site(entries, args.seed)
    stamp = hashlib.sha256(("%d:%d:%r:v1" % (args.files, args.seed, scale)).encode()).hexdigest()[:16]
    stamp_file = os.path.join(os.path.dirname(os.path.abspath(args.out)), "." + os.path.basename(os.path.abspath(args.out)) + ".stamp")

    if args.mutate is not None:
        if not os.path.isdir(args.out):
            ap.error("%s: no tree to mutate; generate it first with the same --files and --seed" % args.out)
        lines = open(stamp_file).read().split() if os.path.exists(stamp_file) else []
        if not lines or lines[0] != stamp:
            ap.error("%s was not generated with these --files/--seed/--scale" % args.out)
        with open(stamp_file, "a") as f:
            f.write("mutated-%d\n" % args.round)
        r = random.Random(f"mutate:{args.seed}:{args.round}")
        n = max(1, round(len(entries) * args.mutate / 100))
        chosen = sorted(r.sample(range(len(entries)), n))
        nbytes = 0
        for i in chosen:
            data = site.content(entries[i], args.round)
            write(args.out, entries[i], data)
            nbytes += len(data)
        summary = {"mutated": n, "bytes": nbytes, "round": args.round, "paths": [entries[i].path for i in chosen],
                   "seconds": round(time.monotonic() - t0, 2)}
        if args.json:
            print(json.dumps(summary))
        else:
            print("mutated %d files (%d bytes), round %d" % (n, nbytes, args.round))
        return 0

    reuse = args.reuse and os.path.exists(stamp_file) and open(stamp_file).read().split() == [stamp]
    if not reuse and os.path.exists(args.out):
        shutil.rmtree(args.out)
    if os.path.exists(stamp_file):
        os.remove(stamp_file)
    os.makedirs(args.out, exist_ok=True)
    total = 0
    kinds: dict[str, list[int]] = {}
    # Every file's content depends only on the seed and its own index, so
    # the tree is the same whichever process writes which file.
    global _SITE
    _SITE = (site, args.out, reuse)
    chunks = [entries[i:i + 500] for i in range(0, len(entries), 500)]
    jobs = max(1, min(args.jobs, len(chunks)))
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            written = pool.map(_write_chunk, chunks)
    else:
        written = [_write_chunk(c) for c in chunks]
    for part in written:
        for kind, size in part:
            kinds.setdefault(kind, [0, 0])
            kinds[kind][0] += 1
            kinds[kind][1] += size
            total += size
    with open(stamp_file, "w") as f:
        f.write(stamp + "\n")
    summary = {"files": len(entries), "bytes": total, "scale": scale, "seed": args.seed,
               "kinds": {k: {"files": v[0], "bytes": v[1]} for k, v in sorted(kinds.items())},
               "seconds": round(time.monotonic() - t0, 2), "reused": reuse}
    if args.json:
        print(json.dumps(summary))
    else:
        print("%d files, %.1f MB in %s (%.1fs)" % (len(entries), total / 1e6, args.out, summary["seconds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
